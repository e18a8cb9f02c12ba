// Package bench generates stores of fixed sizes and measures every interface command on them.
// `make bench` runs the benchmarks and writes bench/RESULTS.md.
package bench
