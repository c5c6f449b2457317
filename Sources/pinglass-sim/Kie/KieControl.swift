import HTTPCore
import Postgres
import JSON

/// `/sim/control/kie/*`, for tests and benchmarks:
/// - `POST settings` `{"name": value | null}` sets knobs (`KieSettings.documentation`; null
///   restores the default); `GET settings` lists them with their current values.
/// - `GET counters`: calls and refusals (`createTask`, `createTask.429`, `createTask.402`,
///   `recordInfo`, `recordInfo.429`, `tasks`, `callbacks`, `results`, `results.404` …).
/// - `GET tasks`: every task with its state by the clock and its callback's fate.
/// - `POST advance` `{"seconds": S}`: moves Kie's time S seconds on: every task (finishes
///   them sooner, result URLs expire), and both rate windows (createTask's counts tasks by
///   creation, recordInfo's its polls), so tests need not wait out a window or a TTL.
/// - `POST reset`: forgets Kie's tasks, counters, rate windows and settings.
struct KieControl {
    let db: Connection

    func handle(_ request: Request, _ path: String, _ body: JSON) throws -> Response {
        switch (request.method, path) {
        case ("POST", "settings"):
            let pairs = body.objectValue ?? []
            if let unknown = pairs.first(where: { !KieSettings.isKnown($0.0) }) {
                return .json(["error": .string("unknown Kie setting \(unknown.0)"),
                              "known": .array(KieSettings.documentation.map { .string($0.0) })], status: 400)
            }
            try db.withTransaction { tx in
                for (name, value) in pairs {
                    if value.isNull {
                        try tx.query("DELETE FROM sim.switches WHERE name = $1", ["kie." + name])
                    } else {
                        try tx.query("INSERT INTO sim.switches VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2",
                                     ["kie." + name, value.scalarText ?? value.serialized])
                    }
                }
            }
            return try settings()
        case ("GET", "settings"):
            return try settings()
        case ("GET", "counters"):
            let rows = try db.query("SELECT name, value FROM sim.kie_counters ORDER BY name", retry: .idempotent)
            return .json(.object(rows.map { ($0.requiredString("name"), .int($0.requiredInt("value"))) }))
        case ("GET", "tasks"):
            let rows = try db.query("""
                SELECT \(KieStore.taskColumns), callback_due_at IS NOT NULL AS callback_due,
                       callback_sent_at IS NOT NULL AS callback_sent, callback_status
                FROM sim.kie_tasks ORDER BY seq
                """, retry: .idempotent)
            return .json(["tasks": .array(rows.map { r in
                let t = KieStore.Task(r)
                return ["taskId": .string(t.id), "state": .string(t.state), "outcome": .string(t.outcome),
                        "callbackUrl": t.callbackURL.map(JSON.string) ?? .null, "callbackSent": .bool(r.bool("callback_sent") ?? false),
                        "callbackStatus": r.int("callback_status").map(JSON.int) ?? .null]
            })])
        case ("POST", "advance"):
            guard let seconds = body["seconds"]?.doubleValue, seconds >= 0 else {
                return .json(["error": "advance needs {\"seconds\": S}"], status: 400)
            }
            let n = try db.withTransaction { tx in
                try tx.execute("UPDATE sim.kie_polls SET at = at - make_interval(secs => $1::float8)", [seconds])
                return try tx.execute("""
                    UPDATE sim.kie_tasks SET created_at = created_at - d, queuing_at = queuing_at - d, generating_at = generating_at - d,
                           finishes_at = finishes_at - d, callback_due_at = callback_due_at - d
                    FROM (SELECT make_interval(secs => $1::float8) AS d) s
                    """, [seconds])
            }
            return .json(["moved": .int(n)])
        case ("POST", "reset"):
            try db.executeScript("""
                DELETE FROM sim.kie_tasks; DELETE FROM sim.kie_polls; DELETE FROM sim.kie_counters;
                DELETE FROM sim.switches WHERE name LIKE 'kie.%';
                """)
            return .json(["ok": true])
        default:
            return .json(["error": "no such Kie control endpoint"], status: 404)
        }
    }

    func settings() throws -> Response {
        let rows = try db.query("SELECT name, value FROM sim.switches WHERE name LIKE 'kie.%'", retry: .idempotent)
        let set = Dictionary(uniqueKeysWithValues: rows.map { (String($0.requiredString("name").dropFirst(4)), $0.requiredString("value")) })
        return .json(["settings": .array(KieSettings.documentation.map { name, doc in
            ["name": .string(name), "value": set[name].map(JSON.string) ?? .null, "about": .string(doc)]
        })])
    }
}
