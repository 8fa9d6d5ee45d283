//! Where segments start: on keyframes that every rendition shares, as close to the target
//! duration as those keyframes allow. Durations may vary; they are exact because they are
//! whole frames of the master's clock.

/// The default target segment duration, seconds.
pub const DEFAULT_SEGMENT_SECONDS: f64 = 4.0;

/// Why no segment plan exists.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// Nothing to segment.
    #[error("no renditions to segment")]
    NoRenditions,
    /// The target duration is not a positive number of seconds.
    #[error("segment duration {0} s (expected 0.1 to 60)")]
    Target(f64),
    /// The frame rate is not positive.
    #[error("frame rate {0}/{1} (expected a positive rate)")]
    Rate(u32, u32),
    /// A rendition does not start with a keyframe, so nothing can be decoded from its start.
    #[error("rendition {0} does not start with a keyframe")]
    NoStartKeyframe(usize),
}

/// The first frame of every segment (the first is 0), for renditions of `frames` frames at
/// `rate` (num, den) frames per second whose keyframes are `keyframes` (one list per
/// rendition, frame numbers). Each boundary is a keyframe in every rendition, the one nearest to
/// `target_seconds` after the previous boundary (the earlier one on a tie).
pub fn plan(
    keyframes: &[Vec<u64>],
    frames: u64,
    rate: (u32, u32),
    target_seconds: f64,
) -> Result<Vec<u64>, PlanError> {
    if !(0.1..=60.0).contains(&target_seconds) {
        return Err(PlanError::Target(target_seconds));
    }
    if rate.0 == 0 || rate.1 == 0 {
        return Err(PlanError::Rate(rate.0, rate.1));
    }
    let first = keyframes.first().ok_or(PlanError::NoRenditions)?;
    for (i, k) in keyframes.iter().enumerate() {
        if frames > 0 && k.first() != Some(&0) {
            return Err(PlanError::NoStartKeyframe(i));
        }
    }
    let mut common: Vec<u64> = first
        .iter()
        .copied()
        .filter(|f| *f < frames && keyframes.iter().all(|k| k.binary_search(f).is_ok()))
        .collect();
    common.sort_unstable();
    common.dedup();
    let target = target_seconds * f64::from(rate.0) / f64::from(rate.1);
    let mut starts = Vec::new();
    let mut at = 0u64;
    if frames == 0 {
        return Ok(starts);
    }
    loop {
        starts.push(at);
        let aim = at as f64 + target;
        let next = common
            .iter()
            .copied()
            .filter(|&f| f > at)
            .chain(std::iter::once(frames))
            .min_by(|&a, &b| {
                (a as f64 - aim)
                    .abs()
                    .total_cmp(&(b as f64 - aim).abs())
                    .then(a.cmp(&b))
            })
            .unwrap_or(frames);
        if next >= frames {
            return Ok(starts);
        }
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn boundaries_are_shared_keyframes_near_the_target() {
        // 25 fps, keyframes every 2 s in both, one extra scene cut in one rendition.
        let a: Vec<u64> = (0..10).map(|k| k * 50).collect();
        let mut b = a.clone();
        b.push(120);
        b.sort_unstable();
        assert_eq!(
            plan(&[a.clone(), b], 500, (25, 1), 4.0).unwrap(),
            [0, 100, 200, 300, 400]
        );
        // Chunk starts at odd places: the nearest one wins, durations vary.
        let k = vec![0, 70, 160, 230, 300];
        assert_eq!(plan(&[k], 330, (25, 1), 4.0).unwrap(), [0, 70, 160, 230]);
        // 29.97: 4 s is 119.88 frames; keyframes every 60 frames give 120-frame segments.
        let k: Vec<u64> = (0..20).map(|i| i * 60).collect();
        assert_eq!(
            plan(&[k], 1200, (30000, 1001), 4.0).unwrap(),
            (0..10).map(|i| i * 120).collect::<Vec<_>>()
        );
        assert_eq!(
            plan(&[vec![0]], 0, (25, 1), 4.0).unwrap(),
            Vec::<u64>::new()
        );
        assert_eq!(
            plan(&[vec![0], vec![1]], 10, (25, 1), 4.0).unwrap_err(),
            PlanError::NoStartKeyframe(1)
        );
        assert!(plan(&[], 10, (25, 1), 4.0).is_err());
        assert!(plan(&[vec![0]], 10, (25, 1), 0.0).is_err());
        assert!(plan(&[vec![0]], 10, (25, 0), 4.0).is_err());
    }

    proptest! {
        /// Segments start at 0, rise, sit on keyframes of every rendition, and none is longer
        /// than the target plus the widest gap between shared keyframes.
        #[test]
        fn plans_are_contiguous_and_on_shared_keyframes(
            gaps in prop::collection::vec(1u64..200, 1..40),
            extra in prop::collection::vec(1u64..2000, 0..10),
            target in 0.5f64..10.0,
        ) {
            let mut shared = vec![0u64];
            for g in &gaps {
                let last = *shared.last().unwrap();
                shared.push(last + g);
            }
            let frames = shared.pop().unwrap();
            let mut other = shared.clone();
            other.extend(extra.iter().filter(|&&e| e < frames));
            other.sort_unstable();
            other.dedup();
            let starts = plan(&[shared.clone(), other.clone()], frames, (25, 1), target).unwrap();
            prop_assert_eq!(starts[0], 0);
            let widest = gaps.iter().max().copied().unwrap_or(0);
            let mut ends = starts.clone();
            ends.push(frames);
            for w in ends.windows(2) {
                prop_assert!(w[1] > w[0]);
                prop_assert!(shared.contains(&w[0]) && other.contains(&w[0]));
                prop_assert!((w[1] - w[0]) as f64 <= target * 25.0 + widest as f64);
            }
        }
    }
}
