//! An interval's value shared among the bands it straddles, in proportion
//! to the seconds it spends in each, exactly: the shares are integers (of
//! whatever unit the caller counts in, e.g. Wh or mWh) that sum to the
//! value, never a float sum that drifts.

// For the statements, which come next; tested here.
#![cfg_attr(not(test), allow(dead_code))]

use super::Piece;

/// `value` over the pieces of one interval (as `BandSplit::pieces` gives
/// them), shared by seconds. Each piece gets the floor of its exact share;
/// the units left over go one each to the pieces with the largest
/// remainders (the earlier piece on a tie). Pieces of the same band are
/// not merged: a caller sums per band. Empty pieces get 0; no pieces, or
/// pieces of no duration, give an empty result.
pub(crate) fn pro_rata(value: i64, pieces: &[Piece]) -> Vec<(String, i64)> {
    let seconds: Vec<i128> = pieces
        .iter()
        .map(|p| i128::from((p.to - p.from).num_seconds().max(0)))
        .collect();
    let total: i128 = seconds.iter().sum();
    if total == 0 {
        return Vec::new();
    }
    let value = i128::from(value);
    // Floor division towards minus infinity keeps remainders non-negative
    // for negative values (export) too.
    let mut shares: Vec<i128> = seconds.iter().map(|s| (value * s).div_euclid(total)).collect();
    let mut left = value - shares.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((value * seconds[i]).rem_euclid(total)));
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    pieces
        .iter()
        .zip(shares)
        .map(|(piece, share)| {
            let share = i64::try_from(share).expect("a share is within the value's range");
            (piece.band.clone(), share)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};
    use proptest::prelude::*;

    use super::*;

    fn pieces(seconds: &[i64]) -> Vec<Piece> {
        let mut at: DateTime<Utc> = "2026-01-07T06:50:00Z".parse().unwrap();
        seconds
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let from = at;
                at += Duration::seconds(*s);
                Piece {
                    band: format!("B{i}"),
                    from,
                    to: at,
                }
            })
            .collect()
    }

    #[test]
    fn shares_by_seconds() {
        // 900 Wh over 10 min in F2 and 5 min in F1: 600 and 300.
        assert_eq!(
            pro_rata(900, &pieces(&[600, 300])),
            [("B0".into(), 600), ("B1".into(), 300)]
        );
        // 100 over thirds: 33.3 each; the unit left goes to the first.
        assert_eq!(
            pro_rata(100, &pieces(&[300, 300, 300])),
            [("B0".into(), 34), ("B1".into(), 33), ("B2".into(), 33)]
        );
        // 10 over 1/6 and 5/6: 1.67 and 8.33; the larger remainder wins.
        assert_eq!(pro_rata(10, &pieces(&[150, 750])), [("B0".into(), 2), ("B1".into(), 8)]);
        assert_eq!(
            pro_rata(-10, &pieces(&[150, 750])),
            [("B0".into(), -2), ("B1".into(), -8)]
        );
        assert!(pro_rata(5, &[]).is_empty());
    }

    proptest! {
        #[test]
        fn the_shares_sum_to_the_value(value in any::<i64>(), seconds in proptest::collection::vec(1i64..100_000, 1..6)) {
            let shares = pro_rata(value, &pieces(&seconds));
            prop_assert_eq!(shares.iter().map(|(_, s)| i128::from(*s)).sum::<i128>(), i128::from(value));
            let total: i64 = seconds.iter().sum();
            for ((_, share), s) in shares.iter().zip(&seconds) {
                // Each share is within one unit of its exact value.
                let exact = i128::from(value) * i128::from(*s);
                let share = i128::from(*share) * i128::from(total);
                prop_assert!((share - exact).abs() < i128::from(total));
            }
        }
    }
}
