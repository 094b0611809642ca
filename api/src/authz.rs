//! The access policy as the server applies it: the policy checks and the
//! Casbin enforcer live in `app::authz`; the GraphQL schema says which
//! objects a policy may name, so checking against it happens here, where
//! the schema is known.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

pub use app::authz::{
    ACTIONS, Authorizer, CheckedPolicy, Loaded, MODEL_FILE, POLICY_FILE, Permission, PolicyError,
    Status, key_match,
};
use store::Store;

/// Every `Type.field` coordinate of the schema, the objects a policy names.
pub fn schema_coordinates() -> BTreeSet<String> {
    let sdl = crate::graphql::sdl();
    let mut coordinates = BTreeSet::new();
    if let Ok(document) = async_graphql::parser::parse_schema(&sdl) {
        use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
        for definition in document.definitions {
            if let TypeSystemDefinition::Type(ty) = definition
                && let TypeKind::Object(object) = &ty.node.kind
            {
                for field in &object.fields {
                    coordinates.insert(format!("{}.{}", ty.node.name.node, field.node.name.node));
                }
            }
        }
    }
    coordinates
}

/// Checks model and policy text against the schema, offline (see
/// [`app::authz::check`]).
pub fn check(model: &str, policy: &str) -> Result<CheckedPolicy, Vec<PolicyError>> {
    app::authz::check(model, policy, &schema_coordinates())
}

/// Reads and checks the two files of a policy folder against the schema.
pub fn check_dir(dir: &Path) -> Result<CheckedPolicy, Vec<PolicyError>> {
    app::authz::check_dir(dir, &schema_coordinates())
}

/// Loads the policy at start, checked against the schema; a broken policy
/// here stops the start.
pub async fn load(dir: &Path, store: Store) -> Result<Arc<Authorizer>, app::Error> {
    Authorizer::load(dir, store, schema_coordinates()).await
}
