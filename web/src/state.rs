//! The playground's state and the actions that change it (a Yew reducer). Pure: decoding happens
//! here through [`Analysis`], the DOM side effects (URL, map) live in the components.

use std::rc::Rc;

use yew::Reducible;

use crate::analysis::Analysis;
use crate::capture::SharedCapture;
use crate::examples;

/// Which view is on screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    /// Paste a packet, see it explained.
    Playground,
    /// Devices connected to a `fleetview serve` (needs the HTTP API).
    Live,
}

/// What the user pointed at in the hex view or the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Nothing.
    None,
    /// A segment of the hex view (index into `Analysis::segments()`).
    Segment(usize),
    /// A record row of the table: packet index, record index.
    Record(usize, u32),
}

/// Where the bytes came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Typed or pasted hex text.
    Text,
    /// A binary capture read from a file.
    File(String),
}

/// The playground's state.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// Text of the input area (hex; for a file, the file's bytes as hex).
    pub text: String,
    /// Where the input came from.
    pub source: Source,
    /// Lenient decoding.
    pub lenient: bool,
    /// Device model for IO names; `None` for the common FMB definitions.
    pub model: Option<String>,
    /// The decoded view of the input.
    pub analysis: Rc<Analysis>,
    /// Hex-view segments (cached: the hex view and the detail panel share them).
    pub segments: Rc<Vec<crate::analysis::Segment>>,
    /// Sticky selection (click).
    pub selected: Selection,
    /// Transient selection (hover); wins over `selected` in the detail panel.
    pub hovered: Option<usize>,
    /// The example last loaded, if the input still is that example.
    pub example: Option<&'static str>,
    /// Current view.
    pub tab: Tab,
    /// A capture file opened, with its sessions.
    pub capture: Option<SharedCapture>,
    /// The capture packet open in the hex view: session index, packet index.
    pub opened: Option<(usize, usize)>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            text: String::new(),
            source: Source::Text,
            lenient: false,
            model: None,
            analysis: Rc::default(),
            segments: Rc::default(),
            selected: Selection::None,
            hovered: None,
            example: None,
            tab: Tab::Playground,
            capture: None,
            opened: None,
        }
    }
}

/// Everything that changes the state.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The text area changed.
    SetText(String),
    /// A binary capture was dropped or picked.
    SetFile {
        /// File name.
        name: String,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// A file could not be read.
    FileError(String),
    /// Toggle lenient decoding.
    SetLenient(bool),
    /// Choose the device model (`None`: common FMB definitions).
    SetModel(Option<String>),
    /// Load an example by id.
    LoadExample(String),
    /// Hover a hex segment (or leave it).
    Hover(Option<usize>),
    /// Click a hex segment.
    SelectSegment(usize),
    /// Click a record row.
    SelectRecord(usize, u32),
    /// Jump to the byte where decoding failed.
    SelectError,
    /// Switch view.
    SetTab(Tab),
    /// A capture file was read and analyzed.
    SetCapture(SharedCapture),
    /// Open a device packet of the capture in the hex view: session index, packet index.
    OpenCapturePacket(usize, usize),
    /// Close the capture view.
    CloseCapture,
}

impl State {
    /// The state for a shared URL's fragment, or the generated route when there is none.
    pub fn initial(fragment: &crate::url::Fragment) -> Self {
        let mut s = Self {
            lenient: fragment.lenient,
            model: fragment.model.clone(),
            tab: if fragment.live {
                Tab::Live
            } else {
                Tab::Playground
            },
            ..Self::default()
        };
        match &fragment.hex {
            Some(hex) => s.text = hex.clone(),
            None => {
                if let Some(e) = examples::all().into_iter().next() {
                    s.text = e.hex;
                    s.example = Some(e.id);
                }
            }
        }
        s.redecode();
        s
    }

    fn redecode(&mut self) {
        let model = self.model.as_deref();
        self.analysis = Rc::new(Analysis::from_text(&self.text, self.lenient, model));
        self.segments = Rc::new(self.analysis.segments());
        self.selected = Selection::None;
        self.hovered = None;
    }

    /// Whether a segment is highlighted (selected directly, part of the selected record, or hovered).
    pub fn is_highlighted(&self, seg: usize) -> bool {
        match self.selected {
            Selection::Segment(i) => i == seg,
            Selection::Record(p, r) => {
                let s = &self.segments[seg];
                s.packet == Some(p)
                    && s.span
                        .map(|i| self.analysis.spans[i].record == Some(r))
                        .unwrap_or(false)
            }
            Selection::None => false,
        }
    }

    /// Show a device packet of the capture in the hex view (as if its hex had been pasted).
    fn open_capture_packet(&mut self, si: usize, pi: usize) {
        let Some(capture) = self.capture.clone() else {
            return;
        };
        let Some(entry) = capture.sessions.get(si).and_then(|s| s.packets.get(pi)) else {
            return;
        };
        let session = &capture.sessions[si];
        self.text = hex_lines(&entry.bytes);
        self.source = Source::File(format!(
            "{}, session #{}, packet [{pi}] (capture packet #{})",
            capture.name, session.id, entry.frame
        ));
        self.example = None;
        // A frame a strict server refuses is shown as decoded leniently, with its warnings.
        if entry.error.is_some() {
            self.lenient = true;
        }
        self.redecode();
        self.opened = Some((si, pi));
    }

    /// The segment the detail panel describes.
    pub fn focused_segment(&self) -> Option<usize> {
        self.hovered.or(match self.selected {
            Selection::Segment(i) => Some(i),
            _ => None,
        })
    }
}

/// Hex text for a binary capture: 16 bytes a line, so the text area stays readable.
pub fn hex_lines(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(fleetview::hex::encode_spaced)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Reducible for State {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut s = (*self).clone();
        match action {
            Action::SetText(text) => {
                s.text = text;
                s.source = Source::Text;
                s.example = None;
                s.redecode();
            }
            Action::SetFile { name, bytes } => {
                s.text = hex_lines(&bytes);
                s.source = Source::File(name);
                s.example = None;
                s.redecode();
            }
            Action::FileError(message) => {
                s.text = String::new();
                s.source = Source::File(message);
                s.redecode();
            }
            Action::SetLenient(on) => {
                s.lenient = on;
                s.redecode();
            }
            Action::SetModel(model) => {
                s.model = model;
                s.redecode();
            }
            Action::LoadExample(id) => {
                if let Some(e) = examples::by_id(&id) {
                    s.text = e.hex;
                    s.lenient = e.lenient;
                    s.source = Source::Text;
                    s.example = Some(e.id);
                    s.tab = Tab::Playground;
                    s.redecode();
                }
            }
            Action::Hover(seg) => {
                if s.hovered == seg {
                    return self;
                }
                s.hovered = seg;
            }
            Action::SelectSegment(seg) => {
                s.selected = if s.selected == Selection::Segment(seg) {
                    Selection::None
                } else {
                    Selection::Segment(seg)
                };
            }
            Action::SelectRecord(p, r) => {
                s.selected = Selection::Record(p, r);
            }
            Action::SelectError => {
                if let Some(i) = s.segments.iter().position(|g| g.error) {
                    s.selected = Selection::Segment(i);
                }
            }
            Action::SetTab(tab) => s.tab = tab,
            Action::SetCapture(capture) => {
                s.opened = None;
                s.tab = Tab::Playground;
                // The first device packet of the first session with a problem (or of the first
                // session) opens in the hex view.
                let first = capture
                    .sessions
                    .iter()
                    .position(|x| !x.problems.is_empty() && !x.packets.is_empty())
                    .or_else(|| capture.sessions.iter().position(|x| !x.packets.is_empty()));
                s.capture = Some(capture);
                if let Some(si) = first {
                    s.open_capture_packet(si, 0);
                }
            }
            Action::OpenCapturePacket(si, pi) => s.open_capture_packet(si, pi),
            Action::CloseCapture => {
                s.capture = None;
                s.opened = None;
            }
        }
        Rc::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reduce(s: State, a: Action) -> State {
        (*Rc::new(s).reduce(a)).clone()
    }

    #[test]
    fn typing_decodes_and_clears_the_selection() {
        let mut s = State::initial(&Default::default());
        assert!(!s.analysis.packets.is_empty());
        s = reduce(s, Action::SelectSegment(0));
        s = reduce(s, Action::LoadExample("tcp-8".into()));
        assert_eq!(s.selected, Selection::None);
        assert_eq!(s.analysis.json[0].codec, Some("8"));
        s = reduce(s, Action::SetText("zz".into()));
        assert!(s.analysis.input_error.is_some());
    }

    #[test]
    fn lenient_examples_switch_lenient_on() {
        let s = reduce(State::default(), Action::LoadExample("tcp-14-nack".into()));
        assert!(s.lenient);
        assert!(s.analysis.error.is_none());
        let s = reduce(s, Action::SetLenient(false));
        assert_eq!(s.analysis.error.as_ref().unwrap().kind, "crc_mismatch");
    }

    #[test]
    fn a_capture_opens_its_first_packet_and_any_other_on_demand() {
        let file = include_bytes!("../../core/tests/captures/tcp_devices.pcap");
        let capture = crate::capture::CaptureView::analyze("d.pcap", [&file[..]]);
        let capture = SharedCapture(Rc::new(capture));
        let s = reduce(State::default(), Action::SetCapture(capture));
        assert_eq!(s.opened, Some((0, 0)));
        assert_eq!(s.analysis.json[0].kind.as_str(), "imei");
        let s = reduce(s, Action::OpenCapturePacket(1, 2));
        assert_eq!(s.opened, Some((1, 2)));
        assert_eq!(s.analysis.json[0].records.as_ref().unwrap().len(), 4);
        assert!(matches!(&s.source, Source::File(n) if n.starts_with("d.pcap, session #")));
        let s = reduce(s, Action::CloseCapture);
        assert!(s.capture.is_none());
    }

    #[test]
    fn selecting_a_record_highlights_only_its_segments() {
        let s = reduce(State::default(), Action::LoadExample("tcp-8-two".into()));
        let s = reduce(s, Action::SelectRecord(0, 1));
        let lit: Vec<_> = (0..s.segments.len())
            .filter(|&i| s.is_highlighted(i))
            .collect();
        assert!(!lit.is_empty());
        let first = s.analysis.spans[s.segments[lit[0]].span.unwrap()].offset;
        assert!(first > 20, "record 2 starts after record 1");
    }
}
