#!/usr/bin/env bash
# Scenario: autoscale.sh with a real Prometheus server as the
# metrics source (and a Custom PromQL metric).
exec bash "$(dirname "$0")/autoscale.sh" Prometheus
