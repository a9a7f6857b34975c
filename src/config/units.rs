//! Units people write in config files: durations (`30s`, `1h 30m`) and sizes (`16MiB`).

/// Durations are written the way people say them: `30s`, `10m`, `1h 30m`.
pub(crate) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn parse(raw: &str) -> Result<Duration, String> {
        humantime::parse_duration(raw)
            .map_err(|e| format!("invalid duration {raw:?} ({e}); write e.g. 30s or 5m"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let raw = String::deserialize(d)?;
        parse(&raw).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let raw = String::deserialize(d)?;
        super::duration::parse(&raw)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// Sizes are a number of bytes or a string with a unit: `16MiB`, `512 KiB`, `2MB`.
pub(crate) mod byte_size {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }

    pub fn parse(raw: &str) -> Result<u64, String> {
        let raw = raw.trim();
        let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
        let (number, unit) = raw.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("invalid size {raw:?}; write e.g. 16MiB or 512KiB"))?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1000,
            "kib" | "k" => 1024,
            "mb" => 1000 * 1000,
            "mib" | "m" => 1024 * 1024,
            "gb" => 1000 * 1000 * 1000,
            "gib" | "g" => 1024 * 1024 * 1024,
            other => {
                return Err(format!(
                    "unknown size unit {other:?} in {raw:?}; use KiB, MiB or GiB"
                ));
            }
        };
        number
            .checked_mul(factor)
            .ok_or_else(|| format!("size {raw:?} is too large"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(n),
            Raw::Text(text) => parse(&text).map_err(serde::de::Error::custom),
        }
    }
}
