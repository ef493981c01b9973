// Package fakeapp is the serving plane of the fake Cloud Run: it gives every
// service of a [fakerun.Server], and every traffic tag of those services, its
// own loopback HTTP URL, routes each request by the service's actual traffic
// split, and answers as the chosen revision's container would.
//
// # Contract
//
// [New] installs a URL function on the fake Admin API ([fakerun.Server.SetURLFunc]),
// so it must be called before the server is seeded. For each (service, tag)
// pair the API asks about, the plane opens one listener on 127.0.0.1:0 and
// reports "http://127.0.0.1:PORT"; the same pair always gets the same URL for
// the life of the Plane, even if the service is deleted and recreated.
//
// A request to a service URL is routed by the actual split
// ([fakerun.Server.Routes] with tag ""): a revision is picked weighted by its
// percent, using a PCG source seeded by [WithSeed] (one stream per service, so
// sequential requests to a service see the same revisions for the same seed,
// whatever happens to other services). A tag URL always goes to its revision,
// whatever share of the service's traffic that revision has.
// The front end answers on its own, without X-Served-By:
//
//   - 401 when the service requires a token ([WithRequireToken]) and the request
//     lacks "Authorization: Bearer <token>";
//   - 404 "Not Found" when the service (or the tag) no longer exists;
//   - 503 "Service Unavailable" when the split has no revision with traffic.
//
// Otherwise the chosen revision answers, and every such answer carries
// "X-Served-By: <revision short name>". Its behaviour comes from the
// environment its app sees ([fakerun.Route.Env]), as a real app honouring the
// drill switch would: the env of the image its serving container's image tag
// resolved to when the revision was created, with that image's APP_VERSION
// (see fakerun's registry, [fakerun.Server.PushImage]), overridden by the
// container's env; for an image the registry does not know, the container's
// env alone. A tag moved later changes nothing for the revision.
//
//   - APP_VERSION is the version it reports ("0.0.0" when unset).
//   - RUNROLLBACK_BREAK unset (or an unknown value): healthy.
//   - health: 503 on every path; the health body says "unhealthy".
//   - version: 200 and healthy, but reports APP_VERSION+"-broken".
//   - slow or slow:DURATION (Go duration, or plain seconds): answers healthy
//     after the delay ([WithSlowDelay], 30s by default), or gives up without
//     answering when the request's context ends or the Plane closes.
//   - flaky or flaky:P: P% (default 50) of answers are 500, decided by the
//     seeded source of the service.
//   - startup: such a revision never becomes Ready (fakerun's job); if it is
//     routed to anyway it answers 503.
//
// A revision that is not Ready answers 503 "Service Unavailable" too (still
// with X-Served-By, so tests can see which revision was picked).
//
// With [WithColdStart], a revision's first instance starts on the first
// request routed to it (service URL or tag URL alike): requests that reach the
// revision before the instance is up wait until it is, then get the answer
// above. A warm revision stays warm.
//
// The health endpoint is any path ending in "/api/v1/health/" (or
// "/api/v1/health"): it answers application/json
// {"status":"healthy","version":V,"revision":R} (status "unhealthy" with 503
// or 500 when broken). Any other path answers text/plain "hello from R".
//
// Every request is counted per service (tag URLs count toward their service):
// per revision that answered, and per status code. A request that the
// revision never answered (the client or the plane gave up on a slow answer)
// counts under status 0. [Plane.Counts] returns a copy; [Plane.ResetCounts]
// clears them.
//
// # Fidelity limits
//
// Plain HTTP on loopback only: no TLS, no run.app host names, no Google front
// end headers, no IAM beyond the static bearer token check, no cold starts
// unless [WithColdStart] asks for them (and then one per revision, with no
// scale to zero), no concurrency limits or autoscaling, no request timeout
// enforcement, and no instance-level state. Routing is per request (no session
// affinity). URLs are only those the fake Admin API asked for after New;
// services seeded before New have no listener.
package fakeapp
