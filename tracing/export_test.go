package tracing

// ServiceResource exposes serviceResource to the tests.
var ServiceResource = serviceResource
