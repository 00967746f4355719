//! Context ids: 7 lowercase hex characters, like the Go proxy's (spec §6.5). One per RTMP
//! connection (also its `srs_id` in the connect `_result`), per HTTP request and per session, and
//! one for the process. Log lines carry it as `cid=`.

use rand::Rng;

/// A fresh random context id.
pub fn new_cid() -> String {
    let v: u32 = rand::thread_rng().gen_range(0..0x1000_0000);
    format!("{v:07x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn cids_are_seven_hex_chars() {
        for _ in 0..1000 {
            let c = super::new_cid();
            assert_eq!(c.len(), 7);
            assert!(c
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
    }
}
