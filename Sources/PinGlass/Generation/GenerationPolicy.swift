/// How long a generation may take and how often a submit is tried: one value shared by
/// the three duties that act on tasks, so they cannot disagree. `dispatch` counts the
/// attempts and records each submitted task's deadline (`--task-deadline` after its
/// submission); `poll-kie` fails a task past its recorded deadline; `sweep` fails a task whose
/// submit lease ran out on its last attempt and ends tasks and jobs past their deadlines.
/// `settings` declares the policy's rows once, with one `--help` line each; each duty takes
/// the rows it uses (`setting(_:in:)`): `dispatch --max-attempts --task-deadline`,
/// `poll-kie --task-deadline`, `sweep --max-attempts --task-deadline`. A task's deadline is
/// decided once, when dispatch submits it: poll-kie and sweep hold the task to the deadline
/// recorded on it and use their own `--task-deadline` only for a running task without one
/// (and sweep for its open-jobs alert). Give the same flag the same value everywhere.
///
/// ```swift
/// var config = Dispatcher.Config()
/// config.generation.taskDeadlineSeconds = 30 * 60      // as `pinglass dispatch --task-deadline 30m`
/// ```
public struct GenerationPolicy: Equatable, Sendable {
    /// Submit attempts a task gets: a transient failure (5xx, timeout) or a submit lease
    /// that ran out on the last of them fails the task.
    public var maxAttempts = 8
    /// A submitted task that has not finished this long after its submission fails
    /// (seconds). Dispatch records it as the task's `deadline_at`, which poll-kie and sweep
    /// then hold the task to; they apply their own value only to a running row without one.
    public var taskDeadlineSeconds = 20 * 60
    /// By this long after a job was created every task of it must have started: the sweep
    /// fails the tasks still queued (a job that never started ends `failed`, refunded); tasks
    /// at Kie end by their own deadline. Recorded on the job when it is created.
    public var jobDeadlineSeconds = 2 * 3600

    /// The longest `--task-deadline` accepted (prune's orphan grace is longer).
    public static let longestTaskDeadlineSeconds = 86_400

    public init() {}

    public static var settings: [DutySetting<Self>] {
        [
            .count("max-attempts", \.maxAttempts, in: 1...50,
                   "Submit attempts a task gets: transient failures are retried, and a task whose submit lease runs out on the last one fails."),
            .seconds("task-deadline", \.taskDeadlineSeconds, in: 60...longestTaskDeadlineSeconds,
                     "How long after submission a task fails: dispatch records it as each task's deadline; "
                     + "poll-kie and sweep use it for a running task without one. Give all three the same value."),
        ]
    }

    /// The row of `settings` named `name`, kept in a duty's `part`.
    public static func setting<Outer>(_ name: String, in part: WritableKeyPath<Outer, Self>) -> DutySetting<Outer> {
        guard let row = settings.first(where: { $0.name == name }) else { preconditionFailure("no generation setting \(name)") }
        return row.within(part)
    }
}
