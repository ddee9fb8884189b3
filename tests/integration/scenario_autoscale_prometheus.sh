#!/usr/bin/env bash
# Scenario: scenario_autoscale.sh with a real Prometheus server as the
# metrics source (and a Custom PromQL metric).
exec bash "$(dirname "$0")/scenario_autoscale.sh" Prometheus
