package normalizer

import (
	"context"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// One processor serves concurrent requests (the receiver calls it from many goroutines):
// the pooled scratch space and the verdict caches must not mix requests.
func TestConcurrentRequests(t *testing.T) {
	n := newTestNormalizer(t)
	want, err := n.processTraces(context.Background(), realisticTraces(30))
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(want)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				in := realisticTraces(30)
				if (g+i)%2 == 0 {
					in = hostileTraces() // interleave hostile requests
				}
				out, err := n.processTraces(context.Background(), in)
				if err != nil {
					errs <- err.Error()
					return
				}
				if (g+i)%2 == 1 {
					got, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(out)
					if string(got) != string(wantJSON) {
						errs <- "a clean request came out differently under concurrency"
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
