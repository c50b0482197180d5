//! The TCP session state machine: bytes in, events and bytes to send out.
//!
//! A [`Session`] has no socket and no clock. Its methods fall into four families, called in this
//! order by whatever moves the bytes (a tokio task, a Node socket, a test):
//!
//! 1. [`Session::handle_input`]: give it the bytes just read, in pieces of any size. It returns
//!    how many more bytes it needs at least before the next event; incomplete input is not an
//!    error.
//! 2. [`Session::poll_event`]: take the events it produced: the login, records, command
//!    responses, keep-alives, and frames that were invalid but could be skipped.
//! 3. The application's decisions: [`Session::accept_imei`], [`Session::ack`] (after the records
//!    are stored, with the number accepted), [`Session::send_command`].
//! 4. [`Session::poll_transmit`]: take the bytes to write to the socket.
//!
//! The session never acks by itself and never acks a command codec. After a fatal error (a
//! framing error it cannot resynchronise from, an invalid login, data after a reject) it is
//! closed and the connection should be dropped.
//!
//! ```
//! use fleetview::{Event, Session, DecodeOptions};
//! let mut s = Session::new(DecodeOptions::default());
//! let login = fleetview::hex::decode("000F333536333037303432343431303133").unwrap();
//! s.handle_input(&login[..5]).unwrap();
//! assert!(s.poll_event().is_none()); // not complete yet
//! s.handle_input(&login[5..]).unwrap();
//! let Some(Event::Login(imei)) = s.poll_event() else { panic!() };
//! assert_eq!(imei.as_str(), "356307042441013");
//! s.accept_imei(true);
//! assert_eq!(s.poll_transmit().unwrap(), [0x01]);
//! ```

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::command::CommandPacket;
use crate::data::Content;
use crate::error::{DecodeError, EncodeError, ErrorKind};
use crate::frame::{declared_len, Layout as FrameLayout, Status, FRAME_OVERHEAD, KEEP_ALIVE};
use crate::imei::Imei;
use crate::options::DecodeOptions;
use crate::packet::{tcp_ack, tcp_data_frame, tcp_login, Packet};

/// What the session hands out.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The device logged in; answer with [`Session::accept_imei`].
    Login(Imei),
    /// A data frame with AVL records; store them, then [`Session::ack`] the number accepted.
    Records(Packet),
    /// A command codec frame (a response to a command, a Codec 13/15 message). Never acked.
    Message(Packet),
    /// A `0xFF` keep-alive at this stream offset.
    KeepAlive {
        /// Stream offset of the byte.
        offset: usize,
    },
    /// A complete frame that could not be decoded (bad CRC, malformed records) and was skipped.
    /// Not acking it makes the device send it again.
    Invalid(DecodeError),
}

/// An entry of the event queue. Consecutive keep-alives are kept as one run: a stream of `0xFF`
/// bytes then costs a few bytes of memory however long it is, instead of a whole [`Event`] per
/// input byte; [`Session::poll_event`] hands them out one by one as before.
#[derive(Clone, Debug)]
enum Queued {
    Event(Event),
    KeepAlives { offset: usize, count: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitingLogin,
    AwaitingDecision,
    Accepted,
    Rejected,
    Failed,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            Self::AwaitingLogin => "awaiting login",
            Self::AwaitingDecision => "awaiting the login decision",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Failed => "closed after an error",
        }
    }
}

/// A sans-IO Teltonika TCP session (server side). See the [module documentation](self).
#[derive(Debug)]
pub struct Session {
    opts: DecodeOptions,
    state: State,
    buf: Vec<u8>,
    /// First byte of `buf` not consumed yet.
    start: usize,
    /// Stream offset of `buf[0]`.
    base: usize,
    events: VecDeque<Queued>,
    transmit: VecDeque<Vec<u8>>,
    imei: Option<Imei>,
    needed: usize,
    /// The error that closed the session, returned again by later calls.
    error: Option<DecodeError>,
}

impl Session {
    /// A session waiting for the device's IMEI login.
    pub fn new(opts: DecodeOptions) -> Self {
        Self {
            opts,
            state: State::AwaitingLogin,
            buf: Vec::new(),
            start: 0,
            base: 0,
            events: VecDeque::new(),
            transmit: VecDeque::new(),
            imei: None,
            needed: 2,
            error: None,
        }
    }

    /// Most bytes the session buffers: one frame of the largest size allowed.
    pub fn max_buffered(&self) -> usize {
        self.opts.max_frame_len + FRAME_OVERHEAD
    }

    /// Feed bytes read from the socket. Returns the minimum number of further bytes needed
    /// before the next event can be produced. An error closes the session.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<usize, DecodeError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.state == State::Rejected {
            return Err(DecodeError::at(
                self.base + self.buf.len(),
                ErrorKind::UnexpectedData {
                    state: self.state.name(),
                },
            ));
        }
        let buffered = self.buf.len() - self.start;
        if buffered + data.len() > self.max_buffered() + FRAME_OVERHEAD
            && self.state == State::AwaitingDecision
        {
            return Err(self.fail(DecodeError::at(
                self.base + self.buf.len(),
                ErrorKind::BufferFull {
                    max: self.max_buffered(),
                },
            )));
        }
        self.buf.extend_from_slice(data);
        self.process()
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.state = State::Failed;
        self.buf = Vec::new();
        self.start = 0;
        self.error = Some(e.clone());
        e
    }

    fn process(&mut self) -> Result<usize, DecodeError> {
        loop {
            let rest = &self.buf[self.start..];
            let at = self.base + self.start;
            let step = match self.state {
                State::AwaitingDecision => {
                    self.needed = 1;
                    break;
                }
                _ if rest.is_empty() => {
                    self.needed = if self.state == State::AwaitingLogin {
                        2
                    } else {
                        1
                    };
                    break;
                }
                _ if rest[0] == KEEP_ALIVE => {
                    self.push_event(Event::KeepAlive { offset: at });
                    Ok(Status::Complete(None, 1))
                }
                State::AwaitingLogin => tcp_login(rest, None).map(|s| s.map(Some)),
                _ => match tcp_data_frame(rest, &self.opts, FrameLayout::default(), None) {
                    Ok(s) => Ok(s.map(Some)),
                    // A body error in a frame whose extent is known: skip the frame.
                    Err(e) if e.offset >= 8 => {
                        let len = declared_len(rest);
                        self.push_event(Event::Invalid(e.shifted(at)));
                        Ok(Status::Complete(None, len + FRAME_OVERHEAD))
                    }
                    Err(e) => Err(e),
                },
            };
            match step {
                Ok(Status::Complete(packet, used)) => {
                    self.start += used;
                    if let Some(mut p) = packet {
                        p.shift(at);
                        self.dispatch(p);
                    }
                }
                Ok(Status::Partial { needed }) => {
                    self.needed = needed;
                    break;
                }
                Err(e) => return Err(self.fail(e.shifted(at))),
            }
        }
        self.compact();
        Ok(self.needed)
    }

    fn dispatch(&mut self, p: Packet) {
        let event = match p.content {
            Content::Imei(ref imei) => {
                self.imei = Some(imei.clone());
                self.state = State::AwaitingDecision;
                Event::Login(imei.clone())
            }
            Content::Avl(_) => Event::Records(p),
            Content::Command(_) => Event::Message(p),
            Content::KeepAlive => Event::KeepAlive { offset: p.offset },
        };
        self.push_event(event);
    }

    fn push_event(&mut self, event: Event) {
        if let Event::KeepAlive { offset } = event {
            if let Some(Queued::KeepAlives {
                offset: first,
                count,
            }) = self.events.back_mut()
            {
                if *first + *count == offset {
                    *count += 1;
                    return;
                }
            }
            self.events
                .push_back(Queued::KeepAlives { offset, count: 1 });
        } else {
            self.events.push_back(Queued::Event(event));
        }
    }

    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.base += self.start;
            self.buf.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.base += self.start;
            self.start = 0;
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        match self.events.front_mut()? {
            Queued::KeepAlives { offset, count } if *count > 1 => {
                let event = Event::KeepAlive { offset: *offset };
                *offset += 1;
                *count -= 1;
                Some(event)
            }
            _ => match self.events.pop_front()? {
                Queued::Event(e) => Some(e),
                Queued::KeepAlives { offset, .. } => Some(Event::KeepAlive { offset }),
            },
        }
    }

    /// Answer the login: `01` accepts and data frames follow; `00` rejects and the session
    /// closes. Ignored unless a login is awaiting its answer.
    pub fn accept_imei(&mut self, accept: bool) {
        if self.state != State::AwaitingDecision {
            return;
        }
        self.transmit.push_back(alloc::vec![u8::from(accept)]);
        if accept {
            self.state = State::Accepted;
            // Frames that arrived with the login are decoded now. An error here closes the
            // session; handle_input and error() report it.
            let _ = self.process();
        } else {
            self.state = State::Rejected;
        }
    }

    /// Acknowledge a data frame: the number of records accepted, as 4 bytes. Zero, or fewer than
    /// were sent, makes the device send the records again.
    pub fn ack(&mut self, accepted: u32) {
        self.transmit.push_back(tcp_ack(accepted).to_vec());
    }

    /// Queue a command frame (Codec 12 or 14) for the device. Teltonika devices take commands
    /// only once all their records are acknowledged: queue it after the last ack.
    pub fn send_command(&mut self, packet: &CommandPacket) -> Result<(), EncodeError> {
        self.transmit
            .push_back(crate::encode::command_frame(packet)?);
        Ok(())
    }

    /// The next bytes to write to the socket, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The IMEI the device logged in with.
    pub fn imei(&self) -> Option<&Imei> {
        self.imei.as_ref()
    }

    /// Minimum number of bytes needed before the next event.
    pub fn needed(&self) -> usize {
        self.needed
    }

    /// Bytes received and not consumed yet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Stream offset of the next byte to decode.
    pub fn offset(&self) -> usize {
        self.base + self.start
    }

    /// The fatal error that closed the session, if any.
    pub fn error(&self) -> Option<&DecodeError> {
        self.error.as_ref()
    }

    /// Whether the session accepts no more input (rejected login or fatal error).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Rejected | State::Failed)
    }

    /// Give back the memory the session holds beyond what it buffers now. The input buffer
    /// keeps the capacity of the largest frame received; a server holding many idle
    /// connections calls this once a large frame is consumed.
    pub fn shrink(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.base += self.start;
            self.start = 0;
        }
        self.buf.shrink_to_fit();
        self.events.shrink_to_fit();
        self.transmit.shrink_to_fit();
    }

    /// Bytes of memory the input buffer holds (its capacity), whatever it buffers.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long run of keep-alives is queued as one entry and handed out byte by byte.
    #[test]
    fn keep_alive_runs_are_queued_compactly() {
        let mut s = Session::new(DecodeOptions::default());
        let mut input = Imei::new("356307042441013").unwrap().login_frame();
        s.handle_input(&input).unwrap();
        assert!(matches!(s.poll_event(), Some(Event::Login(_))));
        s.accept_imei(true);
        let start = input.len();
        input = alloc::vec![KEEP_ALIVE; 1000];
        s.handle_input(&input).unwrap();
        s.handle_input(&input[..3]).unwrap();
        assert_eq!(s.events.len(), 1);
        for i in 0..1003 {
            assert_eq!(s.poll_event(), Some(Event::KeepAlive { offset: start + i }));
        }
        assert_eq!(s.poll_event(), None);
    }

    /// After a large frame the buffer keeps its size until `shrink`; a partial frame survives it.
    #[test]
    fn shrink_gives_back_a_large_frames_buffer() {
        let mut s = Session::new(DecodeOptions::default());
        let login = Imei::new("356307042441013").unwrap().login_frame();
        s.handle_input(&login).unwrap();
        s.accept_imei(true);
        let _ = s.poll_event();
        // A frame announcing 2000 bytes, of which 1500 arrived.
        let mut partial = alloc::vec![0, 0, 0, 0, 0, 0, 0x07, 0xD0, 0x08];
        partial.resize(1500, 0);
        s.handle_input(&partial).unwrap();
        s.shrink();
        assert_eq!(s.buffered(), 1500);
        assert!(s.buffer_capacity() >= 1500);
        let offset = s.offset();
        s.handle_input(&[0xFF]).unwrap();
        assert_eq!(s.offset(), offset, "still inside the frame");
        // Once nothing is buffered, nothing is held.
        let mut s = Session::new(DecodeOptions::default());
        s.handle_input(&login).unwrap();
        s.accept_imei(true);
        s.handle_input(&[KEEP_ALIVE; 3000]).unwrap();
        while s.poll_event().is_some() {}
        assert!(s.buffer_capacity() >= 3000);
        s.shrink();
        assert_eq!(s.buffer_capacity(), 0);
    }
}
