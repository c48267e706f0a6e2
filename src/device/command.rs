//! What a profile's write commands mean beyond their registers: commands
//! whose values the head-end computes (a clock set from the time it is
//! sent).

use chrono::{Datelike, NaiveDateTime, Timelike};
use serde::Deserialize;

/// How a clock command lays the meter's local date and time into registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockLayout {
    /// Six binary bytes YY MM DD hh mm ss, high byte first, in three
    /// registers (TH40C manual, App. E: 05-07-20 15:10:40 is written
    /// `05 07 14 0F 0A 28`).
    YymmddhhmmssBytes,
}

impl ClockLayout {
    /// How many registers the layout fills.
    pub fn count(self) -> u16 {
        match self {
            ClockLayout::YymmddhhmmssBytes => 3,
        }
    }

    /// The register values for the meter's local time `local`; `None` for a
    /// year the layout cannot hold (2000-2255 for two-digit binary years).
    pub fn words(self, local: NaiveDateTime) -> Option<Vec<u16>> {
        match self {
            ClockLayout::YymmddhhmmssBytes => {
                let year = u8::try_from(local.year().checked_sub(2000)?).ok()?;
                let pair = |high: u32, low: u32| (high << 8 | low) as u16;
                Some(vec![
                    pair(u32::from(year), local.month()),
                    pair(local.day(), local.hour()),
                    pair(local.minute(), local.second()),
                ])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    #[test]
    fn th40c_clock_words_are_the_manual_example() {
        let at = NaiveDate::from_ymd_opt(2005, 7, 20)
            .unwrap()
            .and_hms_opt(15, 10, 40)
            .unwrap();
        assert_eq!(
            ClockLayout::YymmddhhmmssBytes.words(at),
            Some(vec![0x0507, 0x140F, 0x0A28])
        );
        let before = NaiveDate::from_ymd_opt(1999, 12, 31)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        assert_eq!(ClockLayout::YymmddhhmmssBytes.words(before), None);
    }
}
