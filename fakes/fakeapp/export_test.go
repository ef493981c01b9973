package fakeapp

import "github.com/runrollback/runrollback/fakes/fakerun"

// Router is the part of fakerun.Server the plane routes with; tests stub it.
type Router interface {
	Routes(serviceFullName, tag string) ([]fakerun.Route, bool)
}

// NewWithRouter builds a plane over a stub router. URLs come from URLFor.
func NewWithRouter(r Router, opts ...Option) *Plane { return newPlane(r, opts...) }

// URLFor is the URL function New installs on the fake Admin API.
func (p *Plane) URLFor(serviceFullName, tag string) string { return p.urlFor(serviceFullName, tag) }

// WithSlowHook calls f each time a slow revision starts waiting.
func WithSlowHook(f func()) Option { return func(p *Plane) { p.slowHook = f } }
