//! Any bytes as a VIN and as fault codes: text or refused at the offending byte; fault codes
//! that decode encode to text that decodes to the same codes.
#![no_main]
use fleetview::composite::{self, Composite, FaultCodes, Vin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Vin::decode(data) {
        Ok(v) => assert!(v.0.len() <= data.len()),
        Err(e) => assert!(data[e.offset] < 0x20 || data[e.offset] > 0x7e),
    }
    if let Ok(codes) = FaultCodes::decode(data) {
        let c = Composite::FaultCodes(codes);
        assert_eq!(composite::decode(281, &c.encode()), Some(Ok(c.clone())));
        if let Composite::FaultCodes(FaultCodes(list)) = c {
            assert!(list.iter().all(|code| !code.is_empty() && !code.contains(',')));
        }
    }
});
