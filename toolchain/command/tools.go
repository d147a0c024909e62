//go:build tools

// Package tools pins the command provider (built by scripts/toolchain.sh).
package tools

import _ "github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command"
