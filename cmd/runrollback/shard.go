package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func shardFlag() cli.Flag {
	return &cli.StringFlag{Name: "shard", Usage: "drill only part `I/N` of the selection (I from 0 to N-1), each part whole project/region groups; default from CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT in a Cloud Run Jobs task"}
}

// shardOpts is the part of the selection a run works on.
type shardOpts struct {
	rollback.Shard
	source string
}

// Where a shard came from, as the report's shard.source says.
const (
	shardFromFlag = "--shard"
	shardFromTask = "CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT"
)

// parseShard reads --shard, else a Cloud Run Jobs task's index and count;
// nil when neither is given. Bad values are usage errors, before any call.
func (e *env) parseShard(c *cli.Context) (*shardOpts, error) {
	if c.IsSet("shard") {
		sh, err := rollback.ParseShard(c.String("shard"))
		if err != nil {
			return nil, usageError{err}
		}
		return &shardOpts{sh, shardFromFlag}, nil
	}
	index, count := e.getenv("CLOUD_RUN_TASK_INDEX"), e.getenv("CLOUD_RUN_TASK_COUNT")
	if index == "" && count == "" {
		return nil, nil
	}
	sh, err := rollback.ShardFromTask(index, count)
	if err != nil {
		return nil, usageError{err}
	}
	return &shardOpts{sh, shardFromTask}, nil
}

// selectShard keeps the services of refs that g's shard owns, records the
// shard in g for the report, and says on the progress which part this is.
func (e *env) selectShard(g *globalOpts, refs []rollback.ServiceRef) []rollback.ServiceRef {
	if g.shard == nil {
		return refs
	}
	mine, sec := g.shard.Select(refs)
	sec.Source = g.shard.source
	g.shardSection = sec
	if len(mine) > 0 {
		e.progress(*g).Event(rollback.Event{Time: timeNow(), Level: rollback.LevelInfo, Message: sec.Describe()})
	}
	return mine
}

// emptyShardText is the verdict of a part with nothing to do.
func emptyShardText(g globalOpts) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "PASS  %s: %s\n", g.command, report.Sanitize(g.shardSection.Describe(), 400))
		return err
	}
}
