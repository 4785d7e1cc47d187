//! Whether a registration or renewal paid enough, to the right place, in the
//! right units (the original's `check_payment` for namespace versions 1-3).

use super::commit::Reject;
use super::params::{Feature, RuleSet};
use super::price::{self, NamespacePrice, Price};
use super::state::NamespaceRec;

pub const STACKS: &str = "STACKS";

/// Namespace versions.
pub const PAY_TO_BURN: u16 = 1;
pub const PAY_TO_CREATOR: u16 = 2;
pub const PAY_WITH_STACKS: u16 = 3;

/// Python's `paid < price`, exact for ints and floats alike.
pub fn less(paid: i128, price: &Price) -> bool {
    match u64::try_from(paid) {
        Ok(p) => price.exceeds(p),
        Err(_) => paid < 0,
    }
}

/// The price-relevant part of a namespace row.
pub fn namespace_price(ns: &NamespaceRec) -> NamespacePrice {
    NamespacePrice {
        version: ns.version,
        coeff: ns.coeff,
        base: ns.base,
        buckets: ns.buckets,
        nonalpha_discount: ns.nonalpha_discount,
        no_vowel_discount: ns.no_vowel_discount,
    }
}

/// `price_name(label, namespace, block)`.
pub fn name_price(rules: &RuleSet, ns: &NamespaceRec, label: &str, block: u64) -> Price {
    price::price_name(
        rules,
        &ns.namespace_id,
        &namespace_price(ns),
        label.as_bytes(),
        block,
    )
}

/// What a registration or renewal offers in tokens: the preorder's token
/// payment (registrations) or the renewal's own. `None` = paid in BTC only.
#[derive(Debug, Clone)]
pub struct TokenOffer {
    pub units: String,
    pub amount: i128,
}

/// The payment that was accepted: tokens (units, amount) or BTC.
#[derive(Debug, Clone, PartialEq)]
pub enum Paid {
    Btc,
    Tokens(i128),
}

pub struct PaymentCheck<'a> {
    pub rules: &'a RuleSet,
    pub ns: &'a NamespaceRec,
    /// The name without its namespace.
    pub label: &'a str,
    /// The block whose prices apply (the preorder's, or the renewal's).
    pub fee_block: u64,
    /// The block being processed.
    pub block: u64,
    pub burn_address: &'a str,
    pub name_fee: i128,
    pub tokens: Option<TokenOffer>,
}

impl PaymentCheck<'_> {
    fn has(&self, f: Feature) -> bool {
        self.rules.has_feature(self.block, f)
    }

    /// `check_token_payment` against a STACKs price.
    fn tokens_cover(&self, price: Price) -> Result<Paid, Reject> {
        let offer = self.tokens.as_ref().ok_or("no token payment")?;
        if offer.units != STACKS {
            return Err("paid in a token other than STACKS");
        }
        if less(offer.amount, &price) {
            return Err("did not pay enough tokens");
        }
        Ok(Paid::Tokens(offer.amount))
    }

    fn btc_covers(&self) -> Result<Paid, Reject> {
        let price = name_price(self.rules, self.ns, self.label, self.fee_block);
        if less(self.name_fee, &price) {
            return Err("did not pay enough BTC");
        }
        Ok(Paid::Btc)
    }

    /// A STACKs offer counts only when it is in STACKS (`get_stacks_payment`).
    fn offers_stacks(&self) -> bool {
        self.tokens.as_ref().is_some_and(|t| t.units == STACKS)
    }

    /// Whether this epoch takes the STACKs offered for a BTC-priced name.
    fn pays_stacks(&self) -> bool {
        self.has(Feature::NameopsCostTokens) && self.offers_stacks()
    }

    /// Versions 1 and 2: STACKs at the BTC price converted, or else BTC.
    fn stacks_or_btc(&self) -> Result<Paid, Reject> {
        if !self.pays_stacks() {
            return self.btc_covers();
        }
        let price = price::price_name_stacks(
            self.rules,
            &self.ns.namespace_id,
            &namespace_price(self.ns),
            self.label.as_bytes(),
            self.fee_block,
        );
        self.tokens_cover(price)
    }

    pub fn check(&self) -> Result<Paid, Reject> {
        let burn = self.rules.burn_address();
        match self.ns.version {
            PAY_TO_BURN => {
                if self.burn_address != burn {
                    return Err("wrong burn address");
                }
                self.stacks_or_btc()
            }
            PAY_TO_CREATOR => {
                if !self.has(Feature::NamespaceBurnToCreator) {
                    return Err("pay-to-creator namespaces are not in this epoch");
                }
                let period = self
                    .rules
                    .receive_fees_period(self.block, &self.ns.namespace_id);
                let to_creator = self.ns.reveal_block + period >= self.block;
                let expected = if to_creator {
                    self.ns.address.as_str()
                } else {
                    burn.as_str()
                };
                if self.burn_address != expected {
                    return Err("wrong burn address");
                }
                if to_creator && self.pays_stacks() {
                    return Err("paid in STACKS where the creator takes BTC");
                }
                self.stacks_or_btc()
            }
            PAY_WITH_STACKS => {
                if !self.has(Feature::NamespacePayWithStacks) {
                    return Err("STACKS namespaces are not in this epoch");
                }
                if self.burn_address != burn {
                    return Err("wrong burn address");
                }
                if !self.offers_stacks() {
                    return Err("no STACKS payment");
                }
                let price = name_price(self.rules, self.ns, self.label, self.fee_block);
                self.tokens_cover(price)
            }
            _ => Err("unknown namespace version"),
        }
    }
}
