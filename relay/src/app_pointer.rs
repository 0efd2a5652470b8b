//! `/app` on a relay started with `--app-origin`: no app, only a page saying
//! where the app is, and a worker that retires the app it may once have served. Phones then run code the relay does not control; an
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

/// A worker that undoes the app this relay once served: a phone that opened
/// it keeps its service worker (a failed update does not remove one), which
/// would go on serving that copy. This one replaces it, empties its caches,
/// unregisters, and reloads the page, which then gets the pointer.
const RETIRING_WORKER: &str = "self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil((async () => {
  for (const name of await caches.keys()) if (name.startsWith('loopsy-')) await caches.delete(name);
  await self.registration.unregister();
  for (const client of await self.clients.matchAll({ type: 'window' })) client.navigate(client.url);
})()));
";

async fn retiring_worker() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(RETIRING_WORKER)
}

/// `/app` and everything under it.
pub fn routes(routes: &mut web::ServiceConfig, app: AppUrl) {
    routes.service(
        web::scope("/app")
            .app_data(web::Data::new(app))
            .route("/sw.js", get_or_head().to(retiring_worker))
            .default_service(get_or_head().to(pointer)),
    );
}
