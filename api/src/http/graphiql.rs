//! GraphiQL for development, served whole from the binary: the page, React
//! and GraphiQL come from `api/assets/graphiql/` (see its README for what
//! is vendored from where), so that opening it asks nothing of any other
//! host and works offline. Production serves none of it.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::config::Environment;
use crate::http::state::ServerState;

/// Where the assets are served; the page names them under it.
const ASSETS_PATH: &str = "/graphiql/assets";

/// Scripts, styles and requests from this server only. GraphiQL's styles
/// carry their fonts and icons as `data:` URLs, and its dialogs add style
/// elements of their own, hence the two exceptions for styles and fonts.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// Vendored files carry their version in their name, so they never
    /// change under it and browsers may keep them; ours change with the
    /// binary.
    versioned: bool,
}

macro_rules! asset {
    ($name:literal, $content_type:expr, $versioned:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/assets/graphiql/",
                $name
            )),
            versioned: $versioned,
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const ASSETS: [Asset; 6] = [
    asset!("react-18.3.1.production.min.js", JS, true),
    asset!("react-dom-18.3.1.production.min.js", JS, true),
    asset!("graphiql-4.1.2.min.js", JS, true),
    asset!("graphiql-4.1.2.min.css", CSS, true),
    asset!("start.js", JS, false),
    asset!("page.css", CSS, false),
];

const PAGE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/graphiql/index.html"
));

pub fn routes(config: &mut web::ServiceConfig) {
    config.route(&format!("{ASSETS_PATH}/{{name}}"), web::get().to(asset));
}

/// The GraphiQL page, with a policy that holds it to this server.
pub fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(PAGE)
}

async fn asset(state: web::Data<ServerState>, name: web::Path<String>) -> HttpResponse {
    let found = ASSETS.iter().find(|asset| asset.name == name.as_str());
    let (Environment::Development, Some(asset)) = (state.env, found) else {
        return HttpResponse::NotFound().finish();
    };
    let cache = if asset.versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, cache))
        .body(asset.body)
}

#[cfg(test)]
mod tests {
    use super::{ASSETS, ASSETS_PATH, PAGE};

    #[test]
    fn the_page_names_every_asset_and_nothing_else() {
        let named: Vec<&str> = PAGE
            .split(['"', '\''])
            .filter_map(|part| part.strip_prefix(ASSETS_PATH))
            .filter_map(|part| part.strip_prefix('/'))
            .collect();
        let mut served: Vec<&str> = ASSETS.iter().map(|asset| asset.name).collect();
        let mut named_sorted = named.clone();
        named_sorted.sort_unstable();
        served.sort_unstable();
        assert_eq!(named_sorted, served);
    }
}
