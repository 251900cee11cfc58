//! Addresses as Lotus writes them in JSON: `f0…` on mainnet, `t0…` on test networks.
//!
//! fvm_shared formats and parses addresses through a process-wide network setting; this type
//! carries the network with the address instead, so a mainnet client and a devnet simulator can
//! live in one process.

use std::fmt;
use std::str::FromStr;

use fvm_shared::ActorID;
use fvm_shared::address::{Address, Network};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, thiserror::Error)]
#[error("invalid Filecoin address {input:?}: {reason}")]
pub struct AddressError {
    input: String,
    reason: String,
}

/// An address together with the network prefix it is written with.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainAddress {
    address: Address,
    network: Network,
}

impl ChainAddress {
    pub fn new(address: Address, network: Network) -> Self {
        Self { address, network }
    }

    /// An ID address (`t01000` on a test network).
    pub fn new_id(id: ActorID, network: Network) -> Self {
        Self::new(Address::new_id(id), network)
    }

    pub fn address(&self) -> &Address {
        &self.address
    }

    pub fn network(&self) -> Network {
        self.network
    }

    /// The actor ID, for ID addresses.
    pub fn id(&self) -> Option<ActorID> {
        self.address.id().ok()
    }

    /// The same address written for another network.
    pub fn with_network(self, network: Network) -> Self {
        Self { network, ..self }
    }
}

impl fmt::Display for ChainAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // fvm_shared writes `<global prefix><protocol><payload>`; the prefix is one character.
        let text = self.address.to_string();
        let prefix = match self.network {
            Network::Mainnet => 'f',
            Network::Testnet => 't',
        };
        write!(f, "{prefix}{}", &text[1..])
    }
}

impl fmt::Debug for ChainAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ChainAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| AddressError { input: s.to_owned(), reason };
        let network = match s.chars().next() {
            Some('f') => Network::Mainnet,
            Some('t') => Network::Testnet,
            _ => return Err(fail("expected an `f` (mainnet) or `t` (testnet) prefix".into())),
        };
        let address = network.parse_address(s).map_err(|e| fail(e.to_string()))?;
        Ok(Self { address, network })
    }
}

impl Serialize for ChainAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChainAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Lotus writes an undefined address as `"<empty>"` (e.g. `MinerInfo.NewWorker`).
pub mod empty_as_none {
    use super::ChainAddress;
    use serde::{Deserialize, Deserializer, Serializer};

    const EMPTY: &str = "<empty>";

    pub fn serialize<S: Serializer>(v: &Option<ChainAddress>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => s.collect_str(a),
            None => s.serialize_str(EMPTY),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ChainAddress>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s == EMPTY => Ok(None),
            Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_network_prefix_it_was_written_with() {
        let t: ChainAddress = "t01000".parse().unwrap();
        let f: ChainAddress = "f01234".parse().unwrap();
        assert_eq!(t.to_string(), "t01000");
        assert_eq!(f.to_string(), "f01234");
        assert_eq!(t.id(), Some(1000));
        assert_eq!(t.with_network(Network::Mainnet).to_string(), "f01000");
        let bls = "t3vvmn62lofvhjd2ugzca6sof2j2ubwok6cj4xxbfzz4yuxfkgobpihhd2thlanmsh3w2ptld2gqkn2jvlss4a";
        assert_eq!(bls.parse::<ChainAddress>().unwrap().to_string(), bls);
    }

    #[test]
    fn rejects_garbage_with_the_input_in_the_message() {
        let err = "x01000".parse::<ChainAddress>().unwrap_err().to_string();
        assert!(err.contains("x01000"), "{err}");
        assert!("t0abc".parse::<ChainAddress>().is_err());
    }
}
