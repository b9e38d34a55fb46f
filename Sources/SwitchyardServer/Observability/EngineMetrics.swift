import Prometheus
import SwitchyardCore
import SwitchyardUpstream

/// The managed engines' metrics, fed by the supervisor (docs/ENGINES.md). Engine names come from
/// the configuration only, so the series are bounded.
struct EngineMetrics: Sendable {
    struct StateKey: Hashable, Sendable {
        var engine: String
        var state: EngineState
    }

    let state: MetricFamily<StateKey, Gauge>
    let loadDuration: MetricFamily<String, DurationHistogram>
    let loads: MetricFamily<String, Counter>
    let crashes: MetricFamily<String, Counter>
    let queue: MetricFamily<String, Gauge>

    init(registry: PrometheusCollectorRegistry) {
        state = MetricFamily { key in
            registry.makeGauge(
                descriptor: .named("switchyard_engine_state", "1 for the state each managed engine is in, 0 for the others"),
                labels: [("engine", key.engine), ("state", key.state.rawValue)])
        }
        loadDuration = MetricFamily { engine in
            registry.makeDurationHistogram(
                descriptor: .named("switchyard_engine_load_duration_seconds", "From spawning an engine to its first healthy answer"),
                labels: [("engine", engine)],
                buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600].map(Duration.seconds))
        }
        loads = MetricFamily { engine in
            registry.makeCounter(
                descriptor: .named("switchyard_engine_loads_total", "Engine starts that became ready"),
                labels: [("engine", engine)])
        }
        crashes = MetricFamily { engine in
            registry.makeCounter(
                descriptor: .named(
                    "switchyard_engine_crashes_total", "Engine exits nobody asked for, and starts that timed out"),
                labels: [("engine", engine)])
        }
        queue = MetricFamily { engine in
            registry.makeGauge(
                descriptor: .named("switchyard_engine_queue_length", "Requests waiting for an engine to load"),
                labels: [("engine", engine)])
        }
    }
}

extension GatewayMetrics: EngineObserver {
    public func engine(_ name: String, state: EngineState) {
        for candidate in EngineState.allCases {
            engines.state[.init(engine: name, state: candidate)].set(to: candidate == state ? 1.0 : 0.0)
        }
    }

    public func engine(_ name: String, loadedIn duration: Duration) {
        engines.loads[name].increment()
        engines.loadDuration[name].record(duration)
    }

    public func engineCrashed(_ name: String) {
        engines.crashes[name].increment()
    }

    public func engine(_ name: String, waiting: Int) {
        engines.queue[name].set(to: Double(waiting))
    }
}
