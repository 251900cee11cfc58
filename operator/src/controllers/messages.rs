//! Chain messages from push to receipt: pushed with a MsgUuid and a maximum fee, looked up until
//! they land, and replaced with a higher fee when the chain does not take them (a base fee above
//! their fee cap), as `lotus mpool replace --auto` does (lotus cli/mpool.go:400-520).

use cid::Cid;
use filecoin_chain::fees::{FeeLimit, replacement};
use filecoin_chain::message::{Message, MessageSendSpec, SignedMessage};
use filecoin_chain::tipset::TipSetKey;
use filecoin_chain::{ChainEpoch, ClientError, LotusClient};
use fvm_shared::econ::TokenAmount;
use fvm_shared::error::ExitCode;

use super::Context;
use crate::core::record::ChainMessage;

/// Pushes `message` with a MsgUuid: pushed again (after a crash), the node returns the message
/// it signed the first time, so nothing is sent twice. `limit` becomes the send spec's `MaxFee`
/// and `MaximizeFeeCap`. Returns the record of the message and the message the node signed.
pub async fn push_message(
    ctx: &Context,
    lotus: &LotusClient,
    message: &Message,
    msg_uuid: uuid::Uuid,
    limit: &FeeLimit,
    head: ChainEpoch,
) -> Result<(ChainMessage, SignedMessage), ClientError> {
    let spec = MessageSendSpec::new(msg_uuid, limit.max_fee.clone()).maximizing_fee_cap(limit.maximize_fee_cap);
    let signed = lotus.mpool_push_message(message, Some(&spec)).await?;
    ctx.metrics.message_pushed(message.method);
    Ok((ChainMessage { cid: signed.cid.to_string(), pushed_at: Some(head), ..Default::default() }, signed))
}

/// With replacement off, a message still not on chain this long after its push is reported.
const UNREPLACED_WARNING_AFTER: ChainEpoch = 120;

/// Where a sent message stands.
pub enum Progress {
    /// On chain: the message as it landed (a replacement's CID if a replacement landed) and its
    /// exit code as the actors' type.
    Landed(ChainMessage, ExitCode),
    /// Not on chain yet.
    Pending,
    /// Not on chain after `fees.replaceAfterEpochs`, and replaced now; the Event text says how.
    Replaced(ChainMessage, String),
    /// Not on chain, and not replaced: its maximum fee allows no replacement the message pool
    /// would take, or replacement is off. The text is the same on every look, so the Events
    /// it makes fold into one series.
    Stuck(String),
}

/// Looks `sent` up, and replaces it if it has waited too long.
pub async fn follow(
    ctx: &Context,
    lotus: &LotusClient,
    sent: &ChainMessage,
    limit: &FeeLimit,
    head: ChainEpoch,
) -> Result<Progress, ClientError> {
    let cid = parse(&sent.cid)?;
    // Replacements carry the same nonce: searching with allowReplaced finds whichever landed
    // (lotus chain/stmgr/searchwait.go, tipsetExecutedMessage).
    if let Some(lookup) = lotus.state_search_msg(&TipSetKey::head(), &cid, -1, true).await? {
        let code = lookup.receipt.exit_code;
        let landed = ChainMessage {
            cid: lookup.message.to_string(),
            epoch: Some(lookup.height),
            exit_code: Some(i64::from(code.value())),
            ..sent.clone()
        };
        return Ok(Progress::Landed(landed, code));
    }
    let after = ctx.config.fees.replace_after_epochs;
    let Some(pushed_at) = sent.pushed_at else { return Ok(Progress::Pending) };
    let waited = head - pushed_at;
    if after <= 0 {
        // Never sent again under a new nonce: the first could still land, and twice is worse.
        if waited > UNREPLACED_WARNING_AFTER {
            return Ok(Progress::Stuck(format!(
                "{} is not on chain since epoch {pushed_at}, and fees.replaceAfterEpochs is 0: replace it (`lotus mpool replace --auto`) or turn replacement on",
                sent.cid
            )));
        }
        return Ok(Progress::Pending);
    }
    if waited < after {
        return Ok(Progress::Pending);
    }
    let stuck = lotus.chain_get_message(&cid).await?;
    let unpriced = Message {
        gas_fee_cap: TokenAmount::from_atto(0),
        gas_premium: TokenAmount::from_atto(0),
        cid: None,
        ..stuck.clone()
    };
    let spec = MessageSendSpec::new(uuid::Uuid::nil(), limit.max_fee.clone()).maximizing_fee_cap(limit.maximize_fee_cap);
    let estimate = lotus.gas_estimate_message_gas(&unpriced, Some(&spec), &TipSetKey::head()).await?;
    let message = match replacement(&stuck, &estimate, limit) {
        Ok(message) => message,
        Err(e) => return Ok(Progress::Stuck(format!("{} is not on chain since epoch {pushed_at}: {e}", sent.cid))),
    };
    let signed = lotus.wallet_sign_message(&message.from, &message).await?;
    let new_cid = lotus.mpool_push(&signed).await?;
    ctx.metrics.message_replaced(message.method);
    let note = format!(
        "{} was not on chain after {} epochs; replaced by {new_cid} with gas premium {} (was {}) and fee cap {} (was {}) attoFIL/gas",
        sent.cid,
        waited,
        message.gas_premium.atto(),
        stuck.gas_premium.atto(),
        message.gas_fee_cap.atto(),
        stuck.gas_fee_cap.atto()
    );
    let replaced = ChainMessage { cid: new_cid.to_string(), pushed_at: Some(head), replacements: sent.replacements + 1, ..Default::default() };
    Ok(Progress::Replaced(replaced, note))
}

fn parse(text: &str) -> Result<Cid, ClientError> {
    Cid::try_from(text).map_err(|e| ClientError::Invalid { method: "StateSearchMsg", reason: format!("{text:?} is not a CID: {e}") })
}
