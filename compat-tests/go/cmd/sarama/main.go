package main

import h "strom.compat/go/internal/harness"

func main() { h.Main(map[string]h.Scenario{}) }
