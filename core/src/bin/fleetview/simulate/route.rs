//! The vehicle model behind each virtual tracker: a car that starts in a real city, drives with
//! heading and speed changes, waits at lights, parks, burns fuel and refuels, and reports what a
//! Teltonika FMB device would: ignition (IO 239), movement (240), GSM signal (21), GNSS status
//! (69), external and battery voltage (66, 67), total odometer (16), fuel level in percent (89)
//! and in litres ×10 (84).
//!
//! Everything is a pure function of the seed and the simulated time steps, so a run with the same
//! `--seed` and `--start-time` produces the same records byte for byte.

use std::f64::consts::PI;

use fleetview::io_catalog::ids;
use fleetview::{AvlRecord, Codec, GenerationType, GpsElement, IoElement, IoValue, Priority};

/// SplitMix64: tiny state (8 bytes per device), good enough statistics, and stable across
/// versions, which an external RNG crate does not promise.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p` (clamped to 0..=1).
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Roughly normal (Irwin–Hall of four uniforms), mean 0, standard deviation `sd`.
    pub(crate) fn normal(&mut self, sd: f64) -> f64 {
        let s: f64 = (0..4).map(|_| self.unit()).sum();
        (s - 2.0) * sd * 3f64.sqrt()
    }
}

/// A start point: a real city centre and its altitude.
pub(crate) struct City {
    pub(crate) name: &'static str,
    lat: f64,
    lon: f64,
    alt: f64,
}

const fn city(name: &'static str, lat: f64, lon: f64, alt: f64) -> City {
    City {
        name,
        lat,
        lon,
        alt,
    }
}

/// Where the fleet lives: a spread over continents so the live map shows clusters worldwide,
/// with Teltonika's home town first.
pub(crate) static CITIES: &[City] = &[
    city("Vilnius", 54.6872, 25.2797, 112.0),
    city("Kaunas", 54.8985, 23.9036, 48.0),
    city("Riga", 56.9496, 24.1052, 7.0),
    city("Warsaw", 52.2297, 21.0122, 100.0),
    city("Berlin", 52.5200, 13.4050, 34.0),
    city("Paris", 48.8566, 2.3522, 35.0),
    city("Madrid", 40.4168, -3.7038, 667.0),
    city("London", 51.5074, -0.1278, 11.0),
    city("Rome", 41.9028, 12.4964, 21.0),
    city("Istanbul", 41.0082, 28.9784, 39.0),
    city("New York", 40.7128, -74.0060, 10.0),
    city("Chicago", 41.8781, -87.6298, 181.0),
    city("Mexico City", 19.4326, -99.1332, 2240.0),
    city("São Paulo", -23.5505, -46.6333, 760.0),
    city("Johannesburg", -26.2041, 28.0473, 1753.0),
    city("Nairobi", -1.2921, 36.8219, 1795.0),
    city("Mumbai", 19.0760, 72.8777, 14.0),
    city("Singapore", 1.3521, 103.8198, 15.0),
    city("Tokyo", 35.6762, 139.6503, 40.0),
    city("Sydney", -33.8688, 151.2093, 58.0),
];

const METRES_PER_DEGREE: f64 = 111_320.0;
/// Beyond this distance from the city centre the driver heads back home.
const ROAM_RADIUS_M: f64 = 25_000.0;
/// Level below which the next stop is at a fuel station.
const REFUEL_BELOW: f64 = 0.15;
/// Longest model step: larger steps (fast-forward) are cut into pieces of this size.
const MAX_STEP_S: f64 = 5.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Phase {
    /// Ignition off.
    Parked,
    /// Ignition on, moving.
    Driving,
    /// Ignition on, standing (traffic lights, jams).
    Stopped,
    /// Ignition off at a fuel station; the tank is filled as the phase starts.
    Refuelling,
}

/// One car and its tracker's sensors.
#[derive(Clone, Debug)]
pub(crate) struct Vehicle {
    rng: Rng,
    codec: Codec,
    city: usize,
    home: (f64, f64),
    lat: f64,
    lon: f64,
    base_alt: f64,
    heading: f64,
    speed_kmh: f64,
    target_kmh: f64,
    phase: Phase,
    phase_left_s: f64,
    odometer_m: f64,
    tank_l: f64,
    fuel_l: f64,
    /// Litres per 100 km at a steady 60 km/h.
    consumption: f64,
    satellites: u8,
    gsm: u8,
    ext_mv: f64,
    battery_mv: f64,
    last_ignition: bool,
    last_moving: bool,
}

impl Vehicle {
    /// The vehicle of device `index` in a fleet seeded with `seed`.
    pub(crate) fn new(seed: u64, index: u64, codec: Codec) -> Self {
        let mut rng = Rng::new(seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407));
        rng.next_u64();
        let city = (rng.next_u64() % CITIES.len() as u64) as usize;
        let c = &CITIES[city];
        // Start somewhere within ~6 km of the centre.
        let r = rng.range(0.0, 6_000.0);
        let a = rng.range(0.0, 2.0 * PI);
        let lat = c.lat + r * a.cos() / METRES_PER_DEGREE;
        let lon = c.lon + r * a.sin() / (METRES_PER_DEGREE * c.lat.to_radians().cos());
        let tank_l = rng.range(45.0, 80.0);
        let driving = rng.chance(0.5);
        let mut v = Self {
            codec,
            city,
            home: (c.lat, c.lon),
            lat,
            lon,
            base_alt: c.alt,
            heading: rng.range(0.0, 360.0),
            speed_kmh: 0.0,
            target_kmh: rng.range(30.0, 60.0),
            phase: if driving {
                Phase::Driving
            } else {
                Phase::Parked
            },
            phase_left_s: 0.0,
            odometer_m: rng.range(10_000.0, 300_000.0).floor() * 1000.0,
            tank_l,
            fuel_l: tank_l * rng.range(0.25, 0.95),
            consumption: rng.range(6.0, 11.0),
            satellites: rng.range(8.0, 14.0) as u8,
            gsm: rng.range(3.0, 6.0) as u8,
            ext_mv: 12_600.0,
            battery_mv: rng.range(4_000.0, 4_150.0),
            last_ignition: driving,
            last_moving: false,
            rng,
        };
        v.phase_left_s = v.phase_duration(v.phase);
        if driving {
            v.speed_kmh = v.target_kmh;
        }
        v
    }

    /// The city this vehicle lives in.
    pub(crate) fn city(&self) -> &'static str {
        CITIES[self.city].name
    }

    fn phase_duration(&mut self, phase: Phase) -> f64 {
        match phase {
            Phase::Parked => self.rng.range(120.0, 1_800.0),
            Phase::Driving => self.rng.range(90.0, 900.0),
            Phase::Stopped => self.rng.range(10.0, 75.0),
            Phase::Refuelling => self.rng.range(180.0, 420.0),
        }
    }

    fn ignition(&self) -> bool {
        matches!(self.phase, Phase::Driving | Phase::Stopped)
    }

    /// Advance simulated time by `dt` seconds, then take a record stamped `timestamp_ms`.
    pub(crate) fn step(&mut self, dt: f64, timestamp_ms: u64) -> AvlRecord {
        let mut left = dt.max(0.0);
        while left > 0.0 {
            let h = left.min(MAX_STEP_S).min(self.phase_left_s.max(0.001));
            self.advance(h);
            left -= h;
        }
        self.record(timestamp_ms)
    }

    fn advance(&mut self, h: f64) {
        self.phase_left_s -= h;
        match self.phase {
            Phase::Driving => self.drive(h),
            Phase::Stopped => self.burn_idle(h),
            Phase::Parked | Phase::Refuelling => {}
        }
        self.sensors(h);
        if self.phase_left_s <= 0.0 {
            self.next_phase();
        }
    }

    fn next_phase(&mut self) {
        let low = self.fuel_l < self.tank_l * REFUEL_BELOW;
        let next = match self.phase {
            Phase::Driving if low => {
                // The jump the fuel sensor shows at a refuel, engine off at the pump.
                self.fuel_l = self.tank_l * self.rng.range(0.92, 1.0);
                Phase::Refuelling
            }
            Phase::Driving if self.rng.chance(0.65) => Phase::Stopped,
            Phase::Driving => Phase::Parked,
            Phase::Stopped | Phase::Parked | Phase::Refuelling => Phase::Driving,
        };
        if next == Phase::Driving {
            self.target_kmh = self.rng.range(30.0, 60.0);
        } else {
            self.speed_kmh = 0.0;
        }
        self.phase = next;
        self.phase_left_s = self.phase_duration(next);
    }

    fn drive(&mut self, h: f64) {
        let (north, east) = self.offset_from_home();
        let dist = north.hypot(east);
        // Speed: new targets from time to time (faster away from the centre), slow down before
        // the phase ends (a light, a parking place).
        if self.rng.chance(h / 40.0) {
            self.target_kmh = if dist > 6_000.0 {
                self.rng.range(60.0, 110.0)
            } else {
                self.rng.range(20.0, 60.0)
            };
        }
        let target = if self.phase_left_s < 8.0 {
            0.0
        } else {
            self.target_kmh
        };
        let accel = 7.0 * h; // ~2 m/s²
        let brake = 12.0 * h;
        self.speed_kmh += (target - self.speed_kmh).clamp(-brake, accel);
        self.speed_kmh = self.speed_kmh.max(0.0);
        // Heading: a gentle wander, turns at junctions, and home when too far out.
        self.heading += self.rng.normal(2.5 * h.sqrt());
        if self.speed_kmh > 5.0 && self.rng.chance(h / 50.0) {
            self.heading += if self.rng.chance(0.5) { 90.0 } else { -90.0 };
        }
        if dist > ROAM_RADIUS_M {
            let home = (-east).atan2(-north).to_degrees();
            let diff = (home - self.heading + 540.0).rem_euclid(360.0) - 180.0;
            self.heading += diff.clamp(-20.0 * h, 20.0 * h);
        }
        self.heading = self.heading.rem_euclid(360.0);
        let metres = self.speed_kmh / 3.6 * h;
        let rad = self.heading.to_radians();
        self.lat += metres * rad.cos() / METRES_PER_DEGREE;
        self.lon += metres * rad.sin() / (METRES_PER_DEGREE * self.lat.to_radians().cos());
        self.odometer_m += metres;
        // Consumption grows with speed above ~60 km/h.
        let per_km = self.consumption / 100.0 * (1.0 + ((self.speed_kmh - 60.0) / 80.0).max(0.0));
        self.fuel_l -= per_km * metres / 1000.0;
        self.burn_idle(h);
    }

    fn burn_idle(&mut self, h: f64) {
        self.fuel_l = (self.fuel_l - 0.8 * h / 3600.0).max(0.0);
    }

    fn sensors(&mut self, h: f64) {
        if self.rng.chance(h / 30.0) {
            let s = f64::from(self.satellites) + self.rng.range(-2.0, 2.99);
            self.satellites = s.clamp(5.0, 17.0) as u8;
        }
        if self.rng.chance(h / 60.0) {
            let g = f64::from(self.gsm) + self.rng.range(-1.0, 1.99);
            self.gsm = g.clamp(1.0, 5.0) as u8;
        }
        // Alternator charging with the engine on, a resting lead-acid battery with it off.
        let target = if self.ignition() { 14_100.0 } else { 12_550.0 };
        self.ext_mv += (target - self.ext_mv) * (h / 20.0).min(1.0) + self.rng.normal(15.0);
        self.battery_mv = (self.battery_mv + self.rng.normal(2.0)).clamp(3_900.0, 4_200.0);
    }

    /// North and east offset from the city centre, in metres.
    fn offset_from_home(&self) -> (f64, f64) {
        let north = (self.lat - self.home.0) * METRES_PER_DEGREE;
        let east = (self.lon - self.home.1) * METRES_PER_DEGREE * self.lat.to_radians().cos();
        (north, east)
    }

    fn record(&mut self, timestamp_ms: u64) -> AvlRecord {
        let ignition = self.ignition();
        let moving = self.speed_kmh >= 3.0;
        let event_id = if ignition != self.last_ignition {
            239
        } else if moving != self.last_moving {
            240
        } else {
            0
        };
        self.last_ignition = ignition;
        self.last_moving = moving;
        let level = if self.tank_l > 0.0 {
            self.fuel_l / self.tank_l
        } else {
            0.0
        };
        let alt = self.base_alt + 6.0 * (self.odometer_m / 700.0).sin();
        let io = vec![
            io(ids::IGNITION, IoValue::U8(ignition.into())),
            io(ids::MOVEMENT, IoValue::U8(moving.into())),
            io(ids::GSM_SIGNAL, IoValue::U8(self.gsm)),
            io(ids::GNSS_STATUS, IoValue::U8(1)),
            io(
                ids::FUEL_LEVEL_PERCENT,
                IoValue::U8((level * 100.0).round().clamp(0.0, 100.0) as u8),
            ),
            io(
                ids::EXTERNAL_VOLTAGE,
                IoValue::U16(self.ext_mv.clamp(0.0, 65_535.0) as u16),
            ),
            io(ids::BATTERY_VOLTAGE, IoValue::U16(self.battery_mv as u16)),
            io(
                ids::FUEL_LEVEL_LITRES,
                IoValue::U16((self.fuel_l * 10.0).round().max(0.0) as u16),
            ),
            io(
                ids::TOTAL_ODOMETER,
                IoValue::U32(self.odometer_m.min(f64::from(u32::MAX)) as u32),
            ),
        ];
        AvlRecord {
            timestamp_ms,
            priority: if event_id != 0 {
                Priority::HIGH
            } else {
                Priority::LOW
            },
            gps: GpsElement {
                longitude: (self.lon * 1e7).round() as i32,
                latitude: (self.lat * 1e7).round() as i32,
                altitude: alt.round().clamp(-1000.0, 9000.0) as i16,
                angle: self.heading.round() as u16 % 360,
                satellites: self.satellites,
                speed: self.speed_kmh.round() as u16,
            },
            event_id,
            generation_type: (self.codec == Codec::Codec16).then_some(if event_id != 0 {
                GenerationType(5) // on change
            } else {
                GenerationType(7) // periodical
            }),
            io,
        }
    }
}

fn io(id: u16, value: IoValue) -> IoElement {
    IoElement { id, value }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(r: &AvlRecord, id: u16) -> u64 {
        r.io(id).and_then(IoValue::raw).unwrap()
    }

    /// A day of driving at 10 s steps: plausible speeds, positions near home, monotonic odometer,
    /// fuel that only rises at a refuel, and ignition consistent with movement.
    #[test]
    fn a_day_of_driving_is_plausible() {
        for index in 0..20 {
            let mut v = Vehicle::new(7, index, Codec::Codec8Ext);
            let home = v.home;
            let mut last: Option<AvlRecord> = None;
            let (mut moved, mut parked, mut refuels) = (0, 0, 0);
            for k in 0..8_640u64 {
                let r = v.step(10.0, 1_700_000_000_000 + k * 10_000);
                assert!(r.gps.speed <= 130, "speed {}", r.gps.speed);
                assert!(r.gps.has_fix());
                let km = ((r.gps.latitude_deg() - home.0) * 111.3)
                    .hypot((r.gps.longitude_deg() - home.1) * 111.3 * home.0.to_radians().cos());
                assert!(
                    km < 45.0,
                    "device {index} drifted {km:.1} km from {}",
                    v.city()
                );
                let ignition = raw(&r, 239) == 1;
                if raw(&r, 240) == 1 {
                    assert!(ignition, "moving with the ignition off");
                    moved += 1;
                }
                if !ignition {
                    parked += 1;
                }
                assert!(raw(&r, 89) <= 100);
                let ext = raw(&r, 66);
                assert!(
                    (11_500..=15_000).contains(&ext),
                    "external voltage {ext} mV"
                );
                if let Some(prev) = &last {
                    assert!(raw(&r, 16) >= raw(prev, 16), "odometer went back");
                    if raw(&r, 84) > raw(prev, 84) {
                        assert!(
                            raw(&r, 84) - raw(prev, 84) > 100,
                            "fuel rose without a refuel"
                        );
                        assert!(!ignition, "refuelled with the engine running");
                        refuels += 1;
                    }
                }
                last = Some(r);
            }
            assert!(
                moved > 1000 && parked > 500,
                "device {index}: moved {moved} parked {parked}"
            );
            let _ = refuels; // Not every car runs low in a day; see the next test.
        }
    }

    /// Fuel falls while driving and jumps back at a refuel.
    #[test]
    fn fuel_falls_and_jumps_at_a_refuel() {
        let mut v = Vehicle::new(1, 3, Codec::Codec8);
        v.fuel_l = v.tank_l * 0.2;
        let mut refuelled = false;
        let mut prev = raw(&v.step(0.0, 0), 84);
        let mut fell = false;
        for k in 1..50_000u64 {
            let r = v.step(10.0, k * 10_000);
            let now = raw(&r, 84);
            fell |= now < prev;
            if now > prev + 50 {
                refuelled = true;
                assert!(raw(&r, 89) >= 90, "refuel filled to {}%", raw(&r, 89));
                break;
            }
            prev = now;
        }
        assert!(fell && refuelled);
    }

    #[test]
    fn same_seed_same_records() {
        let run = |seed| {
            let mut v = Vehicle::new(seed, 42, Codec::Codec16);
            (0..500).map(|k| v.step(1.0, k * 1000)).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
