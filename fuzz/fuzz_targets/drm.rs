//! Any bytes where the encryption reads outside input: as a CPIX document from a key server
//! (parsed, then turned into a key policy), and as AV1: a configuration record (its length in
//! the first byte) then temporal units (each after its length in two bytes), read in turn by
//! one reader as a track's frames are. Each gives a
//! value or an error; none panics or hangs, and the subsamples of an accepted sample cover it
//! exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packager::{av1, cpix};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = cpix::parse(&String::from_utf8_lossy(data)) {
        let _ = doc.policy();
    }
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (config, samples) = rest.split_at(at);
    let Ok(mut reader) = av1::Reader::new(config) else {
        return;
    };
    let mut rest = samples;
    while let [a, b, tail @ ..] = rest {
        let n = (usize::from(*a) << 8 | usize::from(*b)).min(tail.len());
        let (sample, next) = tail.split_at(n);
        rest = next;
        if let Ok(subs) = reader.subsamples(sample) {
            let total: usize = subs
                .iter()
                .map(|s| usize::from(s.clear) + s.protected as usize)
                .sum();
            assert_eq!(total, sample.len());
        }
    }
});
