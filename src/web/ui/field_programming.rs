//! What a technician does on site to open a meter's programming window
//! ("PRG"), by profile, from the meters' manuals: shown on a command's page
//! when the command itself carries no instructions.

/// How to put a meter in its programming mode, and how long it stays.
pub(crate) struct ProgrammingSteps {
    pub steps: &'static [&'static str],
    /// When the meter leaves the mode by itself.
    pub window: &'static str,
    /// The manual and its sections the text comes from.
    pub source: &'static str,
}

/// A1000 manual, §2.1.1 "Operation" (programming mode, "PRG", left after 4
/// minutes with no button pressed) and §2.2.1 "Programming protection" (the
/// seal on the right side of the LCD, the reset button held about 8 s).
const A1000: ProgrammingSteps = ProgrammingSteps {
    steps: &[
        "Open the seal on the right side of the LCD to unlock the seal lid.",
        "Hold the reset button for about 8 seconds, until the LCD shows PRG.",
        "Leave the meter showing PRG: the command is sent while it does.",
    ],
    window: "The meter leaves PRG when the reset button is pressed again, or by itself after 4 minutes with no button pressed.",
    source: "A1000 manual, §2.1.1 Operation and §2.2.1 Programming protection",
};

/// TH40C manual, §3.1 "Modalità di funzionamento" (programming mode: hold
/// the billing reset button 8-9 s, the display shows only "PRG", left by
/// pressing the button or after 10 minutes) and §4.1 "Protezione dalla
/// programmazione" (the protective seal removed first).
const TH40C: ProgrammingSteps = ProgrammingSteps {
    steps: &[
        "Remove the protective seal.",
        "Hold the billing reset button for 8 to 9 seconds, until the display shows only PRG.",
        "Leave the meter showing PRG: the command is sent while it does.",
    ],
    window: "The meter leaves PRG when the billing reset button is pressed again, or by itself after 10 minutes.",
    source: "TH40C manual, §3.1 Modalità di funzionamento and §4.1 Protezione dalla programmazione",
};

/// Any other meter: its manual says how.
const OTHER: ProgrammingSteps = ProgrammingSteps {
    steps: &[
        "Put the meter in its programming mode as its manual says (usually: remove the seal, hold a button until the display shows PRG).",
        "Leave it in programming mode: the command is sent while it is.",
    ],
    window: "The meter leaves programming mode by itself after a few minutes; its manual says how long.",
    source: "",
};

/// The steps for a meter of `profile`.
pub(crate) fn programming_steps(profile: &str) -> &'static ProgrammingSteps {
    match profile {
        "a1000" => &A1000,
        "th40c" => &TH40C,
        _ => &OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_known_meter_has_its_manuals_window() {
        assert!(programming_steps("a1000").window.contains("4 minutes"));
        assert!(programming_steps("th40c").window.contains("10 minutes"));
        assert!(programming_steps("countis-e43").source.is_empty());
    }
}
