//! Serde helpers for the Lotus JSON encodings: CIDs as `{"/": "…"}`, bytes as base64, big
//! integers as decimal strings, bitfields as run-length arrays.

use cid::Cid;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
struct CidLink {
    #[serde(rename = "/")]
    link: String,
}

fn cid_to_link(c: &Cid) -> CidLink {
    CidLink { link: c.to_string() }
}

fn link_to_cid<E: serde::de::Error>(l: CidLink) -> Result<Cid, E> {
    Cid::try_from(l.link.as_str()).map_err(|e| E::custom(format!("invalid CID {:?}: {e}", l.link)))
}

/// `Cid` ⇄ `{"/": "bafy…"}`.
pub mod cid_json {
    use super::*;

    pub fn serialize<S: Serializer>(c: &Cid, s: S) -> Result<S::Ok, S::Error> {
        cid_to_link(c).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cid, D::Error> {
        link_to_cid(CidLink::deserialize(d)?)
    }
}

/// `Option<Cid>` ⇄ `{"/": "bafy…"}` or `null`.
pub mod opt_cid_json {
    use super::*;

    pub fn serialize<S: Serializer>(c: &Option<Cid>, s: S) -> Result<S::Ok, S::Error> {
        c.as_ref().map(cid_to_link).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cid>, D::Error> {
        Option::<CidLink>::deserialize(d)?.map(link_to_cid).transpose()
    }
}

/// `Vec<Cid>` ⇄ `[{"/": …}, …]` (`null` reads as empty).
pub mod cids_json {
    use super::*;

    pub fn serialize<S: Serializer>(c: &[Cid], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(c.iter().map(cid_to_link))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cid>, D::Error> {
        Option::<Vec<CidLink>>::deserialize(d)?
            .unwrap_or_default()
            .into_iter()
            .map(link_to_cid)
            .collect()
    }
}

/// `Vec<u8>` ⇄ base64 string (`null`, Go's nil slice, reads as empty).
pub mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(text) => STANDARD
                .decode(text.as_bytes())
                .map_err(|e| serde::de::Error::custom(format!("invalid base64 {text:?}: {e}"))),
        }
    }
}

/// `Vec<Vec<u8>>` ⇄ array of base64 strings.
pub mod base64_bytes_list {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    pub fn serialize<S: Serializer>(b: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(b.iter().map(|x| STANDARD.encode(x)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Option::<Vec<String>>::deserialize(d)?
            .unwrap_or_default()
            .into_iter()
            .map(|t| STANDARD.decode(t.as_bytes()).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// `TokenAmount` (attoFIL) ⇄ decimal string.
pub mod token_amount {
    use std::str::FromStr;

    use fvm_shared::bigint::BigInt;
    use fvm_shared::econ::TokenAmount;

    use super::*;

    pub fn serialize<S: Serializer>(t: &TokenAmount, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t.atto())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TokenAmount, D::Error> {
        let text = String::deserialize(d)?;
        BigInt::from_str(&text)
            .map(TokenAmount::from_atto)
            .map_err(|e| serde::de::Error::custom(format!("invalid attoFIL amount {text:?}: {e}")))
    }
}

/// `Option<TokenAmount>` ⇄ decimal string or `null` (Go's `*abi.TokenAmount`).
pub mod opt_token_amount {
    use fvm_shared::econ::TokenAmount;

    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(transparent)]
    struct Amount(#[serde(with = "super::token_amount")] TokenAmount);

    pub fn serialize<S: Serializer>(t: &Option<TokenAmount>, s: S) -> Result<S::Ok, S::Error> {
        t.clone().map(Amount).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TokenAmount>, D::Error> {
        Ok(Option::<Amount>::deserialize(d)?.map(|a| a.0))
    }
}

/// `BigInt` (deal weights, power) ⇄ decimal string.
pub mod big_int {
    use std::str::FromStr;

    use fvm_shared::bigint::BigInt;

    use super::*;

    pub fn serialize<S: Serializer>(t: &BigInt, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BigInt, D::Error> {
        let text = String::deserialize(d)?;
        BigInt::from_str(&text)
            .map_err(|e| serde::de::Error::custom(format!("invalid integer {text:?}: {e}")))
    }
}

/// `BitField` ⇄ run lengths, starting with a run of zeros (go-bitfield's JSON form):
/// `{0,1,2,8,9}` → `[0,3,5,2]`, empty → `[0]`.
pub mod bitfield_runs {
    use fvm_ipld_bitfield::BitField;

    use super::*;

    pub fn to_runs(bf: &BitField) -> Vec<u64> {
        let mut runs = Vec::new();
        let mut pos = 0;
        for range in bf.ranges() {
            runs.push(range.start - pos);
            runs.push(range.end - range.start);
            pos = range.end;
        }
        if runs.is_empty() {
            runs.push(0);
        }
        runs
    }

    pub fn from_runs(runs: &[u64]) -> Result<BitField, String> {
        let mut ranges = Vec::new();
        let mut pos: u64 = 0;
        for (i, run) in runs.iter().enumerate() {
            let end = pos
                .checked_add(*run)
                .ok_or_else(|| format!("bitfield run {i} overflows"))?;
            if i % 2 == 1 && *run > 0 {
                ranges.push(pos..end);
            }
            pos = end;
        }
        Ok(BitField::from_ranges(fvm_ipld_bitfield::iter::Ranges::new(ranges)))
    }

    pub fn serialize<S: Serializer>(bf: &BitField, s: S) -> Result<S::Ok, S::Error> {
        to_runs(bf).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BitField, D::Error> {
        let runs = Option::<Vec<u64>>::deserialize(d)?.unwrap_or_default();
        from_runs(&runs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use fvm_ipld_bitfield::BitField;

    use super::bitfield_runs::{from_runs, to_runs};

    #[test]
    fn bitfield_runs_match_go_bitfield() {
        let bf = BitField::try_from_bits([0u64, 1, 2, 8, 9]).unwrap();
        assert_eq!(to_runs(&bf), vec![0, 3, 5, 2]);
        assert_eq!(to_runs(&BitField::new()), vec![0]);
        // The Lotus docs' example `[5,1]` is the set {5}.
        let five = from_runs(&[5, 1]).unwrap();
        assert_eq!(five.iter().collect::<Vec<_>>(), vec![5]);
        assert_eq!(from_runs(&[0, 3, 5, 2]).unwrap(), bf);
        assert!(from_runs(&[u64::MAX, 2]).is_err());
    }
}
