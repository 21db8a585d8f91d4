// Package activator is Spinscale's HTTP activator (autoscaler activator): a
// reverse proxy between an ingress and Spin apps. It routes each request by
// host and path prefix (the spinscale.dev/http-* annotations of the apps'
// Deployments) straight to a ready pod listed in the app's EndpointSlices,
// the least loaded first; it holds requests for an app that has no ready pod
// until one turns Ready; and it counts every app's requests each second and
// streams the counts (internal/httpstats) to the controller, with a wake at
// once when a request is held for an app at zero.
//
// It reads Deployments and EndpointSlices through informers and writes
// nothing to the API. It must not import the controller or the recommender.
package activator
