//! The shard function: which core owns a key.
//!
//! Contract: [`shard_for`] is a pure function of the key bytes and the core count. It does not depend on
//! the process, the build, the platform or a random seed, so every core (and every proxy built from this
//! crate) agrees on the owner of a stream key without talking. The algorithm is frozen: changing it moves
//! every pin, so treat a change like a wire-format change.
//!
//! Algorithm: 64-bit FNV-1a over the key, then the MurmurHash3 `fmix64` finalizer (FNV-1a alone leaves
//! short keys that differ in their last byte close together), then Lemire's multiply-shift reduction to
//! `[0, cores)` (no modulo bias worth speaking of for core counts, and no division).

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a of `key` (the reference algorithm, see
/// <http://www.isthe.com/chongo/tech/comp/fnv/>).
fn fnv1a_64(key: &[u8]) -> u64 {
    key.iter().fold(FNV_OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    })
}

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The stable 64-bit hash behind [`shard_for`].
pub fn stable_hash(key: &[u8]) -> u64 {
    fmix64(fnv1a_64(key))
}

/// The core in `0..cores` that owns `key`.
///
/// Deterministic and stable (see the module docs). `cores == 0` is treated as one core and returns 0,
/// so a caller never has to special-case an empty pool.
pub fn shard_for(key: &[u8], cores: usize) -> usize {
    let cores = cores.max(1) as u128;
    // Multiply-shift maps the full 64-bit range onto `[0, cores)` using the high bits of the product.
    ((u128::from(stable_hash(key)) * cores) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shard_for_is_stable_across_builds() {
        // Frozen vectors: if this test fails the shard function changed, which moves every stream pin.
        let vectors: [(&[u8], [usize; 3]); 5] = [
            (b"", SHARD_EMPTY),
            (b"live/livestream", SHARD_LIVESTREAM),
            (b"live/livestream.flv", SHARD_LIVESTREAM_FLV),
            (b"__defaultVhost__/live/stream1", SHARD_VHOST_STREAM1),
            (b"app/a", SHARD_APP_A),
        ];
        for (key, expected) in vectors {
            let got = [shard_for(key, 2), shard_for(key, 4), shard_for(key, 8)];
            assert_eq!(got, expected, "key {:?}", String::from_utf8_lossy(key));
        }
    }

    const SHARD_EMPTY: [usize; 3] = [1, 3, 7];
    const SHARD_LIVESTREAM: [usize; 3] = [1, 3, 7];
    const SHARD_LIVESTREAM_FLV: [usize; 3] = [0, 1, 2];
    const SHARD_VHOST_STREAM1: [usize; 3] = [1, 3, 7];
    const SHARD_APP_A: [usize; 3] = [0, 1, 3];

    #[test]
    fn stable_hash_is_frozen() {
        assert_eq!(stable_hash(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(stable_hash(b"live/livestream"), 0xe035_7046_0ce3_6374);
        assert_eq!(stable_hash(b"live/livestream.flv"), 0x4bf6_cf2d_951a_a03a);
    }

    #[test]
    fn shard_for_spreads_keys_evenly_over_2_4_and_8_cores() {
        const KEYS: usize = 20_000;
        for cores in [2usize, 4, 8] {
            let mut counts = vec![0usize; cores];
            for i in 0..KEYS {
                counts[shard_for(format!("live/stream{i}").as_bytes(), cores)] += 1;
            }
            let expected = KEYS / cores;
            for (core, &count) in counts.iter().enumerate() {
                // 5 % of the expected share is far outside the noise of a good hash at 20k keys.
                assert!(
                    count.abs_diff(expected) * 20 <= expected,
                    "core {core} of {cores} got {count} keys, expected about {expected}: {counts:?}"
                );
            }
        }
    }

    #[test]
    fn shard_for_stays_in_range_and_treats_zero_cores_as_one() {
        for cores in 1..=64 {
            for key in [&b"x"[..], b"live/a", b"\xff\x00\xfe"] {
                assert!(shard_for(key, cores) < cores);
            }
        }
        assert_eq!(shard_for(b"live/a", 0), 0);
        assert_eq!(shard_for(b"live/a", 1), 0);
    }
}
