package main

import (
	"os"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type (
	kmsgCommitReq  = kmsg.OffsetCommitRequest
	kmsgCommitResp = kmsg.OffsetCommitResponse
)

func osArgs() []string { return os.Args }
