//! A posted command form read back as the kind asked and its named
//! parameters, as the API takes them.

use crate::domain::command::CommandParameters;
use crate::web::error::ApiError;

/// A number as typed: decimal, hexadecimal with 0x, or a decimal fraction.
fn number(name: &str, token: &str) -> Result<serde_json::Value, ApiError> {
    let integer = match token.strip_prefix("0x").or_else(|| token.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => token.parse::<i64>().ok(),
    };
    if let Some(integer) = integer {
        return Ok(integer.into());
    }
    match token.parse::<f64>() {
        Ok(real) if real.is_finite() => Ok(real.into()),
        _ => Err(ApiError::invalid(name, format!("{token:?} is not a number"))),
    }
}

/// The names of a posted form that are not parameters.
const CONTROLS: [&str; 3] = ["kind", "broadcast", "confirm"];

/// A posted form as the kind asked and its named parameters: a list
/// (`channels`, `values`) from repeated fields or items separated by
/// commas or spaces, `unit` as text, any other parameter a number. An
/// empty field is not given.
pub(crate) fn parse_form(posted: &[(String, String)]) -> Result<(String, CommandParameters), ApiError> {
    let kind = posted
        .iter()
        .find(|(name, _)| name == "kind")
        .map(|(_, kind)| kind.clone())
        .unwrap_or_default();
    let mut object = serde_json::Map::new();
    for (name, value) in posted.iter().filter(|(name, _)| !CONTROLS.contains(&name.as_str())) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match name.as_str() {
            "unit" => {
                object.insert(name.clone(), value.into());
            }
            "channels" | "values" => {
                let list = object
                    .entry(name.clone())
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                for item in value.split([',', ' ']).filter(|item| !item.is_empty()) {
                    if let serde_json::Value::Array(items) = list {
                        items.push(number(name, item)?);
                    }
                }
            }
            _ => {
                object.insert(name.clone(), number(name, value)?);
            }
        }
    }
    if posted.iter().any(|(name, _)| name == "broadcast") {
        object.insert("broadcast".to_owned(), true.into());
    }
    let parameters = serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|error| ApiError::invalid("parameters", error.to_string()))?;
    Ok((kind, parameters))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn a_form_reads_back_as_named_numbers_lists_or_a_unit() {
        let posted = pairs(&[
            ("kind", "configure_channel"),
            ("channels", "1"),
            ("channels", "0x05"),
            ("unit", "kWh"),
            ("vt_ratio", "1.5"),
            ("off_time_ms", ""),
            ("broadcast", "1"),
            ("confirm", "1"),
        ]);
        let (kind, parsed) = parse_form(&posted).unwrap();
        assert_eq!(kind, "configure_channel");
        assert_eq!(parsed.channels, Some(vec![1, 5]));
        assert_eq!(parsed.unit.as_deref(), Some("kWh"));
        assert_eq!(parsed.vt_ratio, Some(1.5));
        assert_eq!(parsed.off_time_ms, None);
        assert!(parsed.broadcast);
        let values = parse_form(&pairs(&[("values", "1,0x20 3")])).unwrap().1;
        assert_eq!(values.values, Some(vec![1, 32, 3]));
        let refused = parse_form(&pairs(&[("tariff", "two")])).unwrap_err();
        assert_eq!(refused.message, "tariff: \"two\" is not a number");
        let unknown = parse_form(&pairs(&[("colour", "2")])).unwrap_err();
        assert!(unknown.message.contains("colour"), "{}", unknown.message);
    }
}
