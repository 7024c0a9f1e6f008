//! Durations as the configuration file writes them: humantime text such as `"1s"`,
//! `"250ms"` or `"24h"`. Each subsystem's settings type reads its durations through
//! `#[serde(with = "crate::duration_text")]`, so the file's format lives in one place.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[derive(serde::Deserialize)]
    struct Section {
        #[serde(with = "super")]
        wait: Duration,
    }

    #[test]
    fn reads_humantime_text_and_refuses_the_rest() {
        let section: Section = toml::from_str(r#"wait = "1m 250ms""#).unwrap();
        assert_eq!(section.wait, Duration::from_millis(60_250));
        let error = toml::from_str::<Section>(r#"wait = "soon""#).err().unwrap();
        assert!(error.to_string().contains("wait"), "{error}");
        assert!(
            toml::from_str::<Section>("wait = 5").is_err(),
            "a bare number has no unit"
        );
    }
}
