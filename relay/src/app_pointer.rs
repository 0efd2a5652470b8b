//! `/app` on a relay started with `--app-origin`: no app, only a page saying
//! where the app is. Phones then run code the relay does not control; an
//! older pairing link that still points here lands on this page rather than
//! on an app that could have been changed.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use loopsy_webapp::{AppUrl, get_or_head};

async fn pointer(app: web::Data<AppUrl>) -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(format!(
            "This relay only carries connections. The loopsy phone app is at {}: \
             on your laptop run `loopsy mobile pair` for a pairing link to it.\n",
            app.page()
        ))
}

/// `/app` and everything under it.
pub fn routes(routes: &mut web::ServiceConfig, app: AppUrl) {
    routes.service(
        web::scope("/app")
            .app_data(web::Data::new(app))
            .default_service(get_or_head().to(pointer)),
    );
}
