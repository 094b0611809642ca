//! Guests' rights: what happens beyond the database when a guest is
//! forgotten.

/// Asks the payment providers to delete the customer objects behind saved
/// cards; answers how many did. A provider that fails is logged (with the
/// gateway, not the guest) and not retried: the card data is theirs.
pub async fn forget_saved_cards(
    gateways: &plugins::Gateways,
    saved_cards: &[(String, String)],
) -> u32 {
    let mut asked = 0u32;
    for (gateway, reference) in saved_cards {
        if let Some(provider) = gateways.named(gateway) {
            match provider.forget(reference).await {
                Ok(()) => asked += 1,
                Err(error) => {
                    tracing::warn!(%error, %gateway, "the provider could not delete its customer object")
                }
            }
        }
    }
    asked
}
