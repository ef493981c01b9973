package probe

import (
	"context"
	"time"
)

// WaitNumbered is a wait whose attempts are made by try, given each attempt's
// number in starting order: tests script answers by number, whatever order
// the attempts run in.
func WaitNumbered(ctx context.Context, p Policy, detect bool, try func(ctx context.Context, i int) Attempt) Verdict {
	return p.wait(ctx, time.Now, detect, try)
}
