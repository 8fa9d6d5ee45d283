//! Spreading files over the appliances of a site: weighted rendezvous (highest random weight)
//! hashing. Every appliance scores every file; a file goes to the `r` best. Adding an appliance
//! moves only the files it now wins (about 1/N of them), and removing one moves only its own.

/// A 64-bit hash of an appliance name and a file key (FNV-1a, then a finaliser that spreads the
/// bits), stable across runs and machines.
fn hash(appliance: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in appliance.bytes().chain([0xff]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64's finaliser.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The score of `key` on an appliance of weight `weight`: `-weight / ln(u)` with `u` uniform in
/// (0, 1), so that each appliance wins a share of the keys proportional to its weight.
fn score(appliance: &str, weight: f64, key: &str) -> f64 {
    let u = ((hash(appliance, key) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -weight / u.ln()
}

/// The indices of `appliances` (name, weight) ranked best first for `key`.
pub fn rank(appliances: &[(&str, f64)], key: &str) -> Vec<usize> {
    let mut scored: Vec<(f64, usize)> = appliances
        .iter()
        .enumerate()
        .map(|(i, (name, w))| (score(name, *w, key), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn owners(names: &[String], keys: &[String], r: usize) -> Vec<Vec<String>> {
        let a: Vec<(&str, f64)> = names.iter().map(|n| (n.as_str(), 1.0)).collect();
        keys.iter()
            .map(|k| {
                let mut o: Vec<String> =
                    rank(&a, k)[..r].iter().map(|&i| names[i].clone()).collect();
                o.sort();
                o
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Adding one appliance to N moves at most about 1/(N+1) of the files (replication 1),
        /// and only onto the new one; removing it moves them back and nothing else.
        #[test]
        fn one_appliance_more_or_less_moves_about_one_nth(n in 2usize..12, seed in 0u64..1000) {
            let names: Vec<String> = (0..n).map(|i| format!("oca-{seed}-{i}")).collect();
            let keys: Vec<String> = (0..3000).map(|i| format!("title-{}/video/seg-{i:05}.m4s", seed % 7)).collect();
            let before = owners(&names, &keys, 1);
            let mut more = names.clone();
            more.push(format!("oca-{seed}-new"));
            let after = owners(&more, &keys, 1);
            let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
            let share = moved as f64 / keys.len() as f64;
            let expected = 1.0 / (n + 1) as f64;
            prop_assert!(share <= expected * 1.25 + 0.01, "moved {share:.3}, expected about {expected:.3}");
            for (b, a) in before.iter().zip(&after) {
                if b != a {
                    prop_assert_eq!(&a[0], &format!("oca-{seed}-new"));
                }
            }
            prop_assert_eq!(owners(&names, &keys, 1), before);
        }

        /// With replication 2, removing one appliance changes only the files it held.
        #[test]
        fn removing_one_touches_only_its_files(n in 3usize..10, gone in 0usize..3) {
            let names: Vec<String> = (0..n).map(|i| format!("e{i}")).collect();
            let keys: Vec<String> = (0..2000).map(|i| format!("t/{i}")).collect();
            let before = owners(&names, &keys, 2);
            let fewer: Vec<String> = names.iter().enumerate().filter(|(i, _)| *i != gone).map(|(_, s)| s.clone()).collect();
            let after = owners(&fewer, &keys, 2);
            let mut moved = 0;
            for (b, a) in before.iter().zip(&after) {
                if b != a {
                    prop_assert!(b.contains(&names[gone]));
                    moved += 1;
                }
            }
            let share = moved as f64 / keys.len() as f64;
            prop_assert!(share <= 2.0 / n as f64 * 1.25 + 0.01, "moved {share:.3} of {n}");
        }
    }

    #[test]
    fn weights_give_proportional_shares() {
        let a = [("big", 3.0), ("small", 1.0)];
        let wins = (0..8000)
            .filter(|i| rank(&a, &format!("k{i}"))[0] == 0)
            .count();
        let share = wins as f64 / 8000.0;
        assert!((share - 0.75).abs() < 0.03, "{share}");
    }
}
