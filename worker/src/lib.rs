//! Fleetview edge relay.
