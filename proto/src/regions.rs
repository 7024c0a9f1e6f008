//! The regions of `edgekv demo` and the round trips between them, shared by the demo (which
//! simulates them) and the benchmark (which measures against them): roughly what public
//! cloud regions see.

/// Default demo regions, in order.
pub const DEMO_REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-northeast"];

/// Round trips between the demo regions, in ms.
pub const DEMO_ROUND_TRIPS: [(&str, &str, u32); 3] = [
    ("us-east", "eu-west", 80),
    ("us-east", "ap-northeast", 145),
    ("eu-west", "ap-northeast", 220),
];

/// The demo round trip between two regions, either way round; `None` for other pairs.
pub fn demo_round_trip_ms(a: &str, b: &str) -> Option<u32> {
    DEMO_ROUND_TRIPS
        .iter()
        .find(|(x, y, _)| (a == *x && b == *y) || (a == *y && b == *x))
        .map(|(_, _, rtt)| *rtt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_are_symmetric() {
        assert_eq!(demo_round_trip_ms("eu-west", "us-east"), Some(80));
        assert_eq!(demo_round_trip_ms("ap-northeast", "eu-west"), Some(220));
        assert_eq!(demo_round_trip_ms("us-east", "mars"), None);
    }
}
