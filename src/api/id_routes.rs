//! The routes with an id in their path (`/permissions/{id}/verify`), matched by hand.
//!
//! actix matches a path with a `{…}` segment by a regex search with captures, which was the
//! largest single cost of a verify after hashing. The routes of one prefix are instead one
//! service, registered as a plain prefix (`/permissions`): it splits what follows into the id
//! and the rest (`/verify`), picks the route by the rest and the method, and answers 405 with
//! `Allow` for a known rest with another method, 404 for anything else. [`PathId`] gives the
//! handler its id from the same split.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::dev::{
    AppService, HttpServiceFactory, Payload, ResourceDef, Service, ServiceFactory, ServiceRequest,
    ServiceResponse,
};
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, Route};

use crate::error::Error;

/// A route's service, as actix builds it (its type is not exported).
type RouteService = <Route as ServiceFactory<ServiceRequest>>::Service;
/// What a route's service answers with (the type actix's route service has).
type Answer = Pin<Box<dyn Future<Output = Result<ServiceResponse, actix_web::Error>>>>;

/// The id and the rest of a path below a prefix: `/<id>` or `/<id>/<rest>`, the id a non-empty
/// segment. `None` for anything else (nothing, `/`, `//verify`).
fn split(below: &str) -> Option<(&str, &str)> {
    let after = below.strip_prefix('/')?;
    let (id, rest) = match after.find('/') {
        Some(i) => after.split_at(i),
        None => (after, ""),
    };
    (!id.is_empty()).then_some((id, rest))
}

/// The id in a path matched by [`IdRoutes`], for its handlers: the segment as it stands in the
/// path, after actix's decoding of what is safe to decode (`%2F`, `%25` and `%2B` stay as
/// written; no id we issue holds them, so such an id finds nothing, as before).
pub(super) struct PathId(pub String);

impl FromRequest for PathId {
    type Error = Error;
    type Future = Ready<Result<PathId, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = split(req.match_info().unprocessed()).map(|(id, _)| PathId(id.to_owned()));
        ready(id.ok_or_else(not_found))
    }
}

/// One route below the prefix: the rest of its path after the id (`""` or `/verify`).
struct IdRoute {
    rest: &'static str,
    method: Method,
    route: Route,
}

/// The routes of one prefix (`/permissions`), each `<prefix>/{id}<rest>`.
pub(super) struct IdRoutes {
    prefix: &'static str,
    routes: Vec<IdRoute>,
}

impl IdRoutes {
    pub(super) fn new(prefix: &'static str) -> IdRoutes {
        IdRoutes {
            prefix,
            routes: Vec::new(),
        }
    }

    /// The prefix and the rest of `path` if it is `<prefix>/{id}<rest>`.
    pub(super) fn parse(path: &'static str) -> Option<(&'static str, &'static str)> {
        let (prefix, rest) = path.split_once("/{id}")?;
        (!prefix.is_empty() && !rest.contains('{')).then_some((prefix, rest))
    }

    pub(super) fn prefix(&self) -> &'static str {
        self.prefix
    }

    pub(super) fn add(&mut self, rest: &'static str, method: Method, route: Route) {
        self.routes.push(IdRoute {
            rest,
            method,
            route,
        });
    }
}

impl HttpServiceFactory for IdRoutes {
    fn register(self, config: &mut AppService) {
        config.register_service(ResourceDef::root_prefix(self.prefix), None, self, None);
    }
}

impl ServiceFactory<ServiceRequest> for IdRoutes {
    type Response = ServiceResponse;
    type Error = actix_web::Error;
    type Config = ();
    type Service = IdRoutesService;
    type InitError = ();
    type Future = Pin<Box<dyn Future<Output = Result<IdRoutesService, ()>>>>;

    fn new_service(&self, (): ()) -> Self::Future {
        let starting: Vec<_> = self
            .routes
            .iter()
            .map(|r| (r.rest, r.method.clone(), r.route.new_service(())))
            .collect();
        Box::pin(async move {
            let mut routes = Vec::with_capacity(starting.len());
            for (rest, method, service) in starting {
                routes.push((rest, method, service.await?));
            }
            Ok(IdRoutesService {
                routes: Rc::from(routes),
            })
        })
    }
}

pub(super) struct IdRoutesService {
    routes: Rc<[(&'static str, Method, RouteService)]>,
}

impl Service<ServiceRequest> for IdRoutesService {
    type Response = ServiceResponse;
    type Error = actix_web::Error;
    type Future = Answer;

    actix_web::dev::always_ready!();

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let Some((_, rest)) = split(req.match_info().unprocessed()) else {
            return Box::pin(ready(Ok(req.error_response(not_found()))));
        };
        let mut known = self.routes.iter().filter(|(r, ..)| *r == rest).peekable();
        if known.peek().is_none() {
            return Box::pin(ready(Ok(req.error_response(not_found()))));
        }
        let mut allow = Vec::new();
        for (_, method, service) in known {
            if method == req.method() {
                return service.call(req);
            }
            allow.push(method.as_str());
        }
        let resp = super::method_not_allowed(&allow.join(", "));
        Box::pin(ready(Ok(req.into_response(resp))))
    }
}

fn not_found() -> Error {
    Error::NotFound("no such route".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_below_the_prefix_is_an_id_and_a_rest() {
        assert_eq!(split("/abc"), Some(("abc", "")));
        assert_eq!(split("/abc/verify"), Some(("abc", "/verify")));
        assert_eq!(split("/abc/verify/"), Some(("abc", "/verify/")));
        assert_eq!(split("/abc/"), Some(("abc", "/")));
        for none in ["", "/", "//verify", "abc", "abc/verify"] {
            assert_eq!(split(none), None, "{none:?}");
        }
    }

    #[test]
    fn only_a_path_with_one_id_segment_is_an_id_route() {
        assert_eq!(
            IdRoutes::parse("/permissions/{id}/verify"),
            Some(("/permissions", "/verify"))
        );
        assert_eq!(
            IdRoutes::parse("/admin/agents/{id}"),
            Some(("/admin/agents", ""))
        );
        for none in ["/permissions/request", "/{id}", "/a/{id}/b/{other}"] {
            assert_eq!(IdRoutes::parse(none), None, "{none:?}");
        }
    }
}
