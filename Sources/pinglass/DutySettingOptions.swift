import ArgumentParser
import PinGlass

/// A duty's own options, made from its settings table (`DutyConfig.settings`) instead of
/// being declared again here: one `--<name>` per setting offered on the command line, its
/// default the value in `Config()`, its help line the table's, a count read as a number and
/// a time as a `Duration` (`30s`, `15m`, `2h`, `1d`, or plain seconds). The parsed values
/// make `config`; the command validates it with the table's ranges.
///
/// ```swift
/// @OptionGroup var settings: DutySettingOptions<Dispatcher.Config>
/// try Dispatcher(deps: deps, config: settings.config)
/// ```
///
/// ArgumentParser finds a type's options by reflecting on a fresh instance and decodes them
/// by coding key. This type's mirror lists one `Option` per table row (keyed by the row's
/// name) and `init(from:)` decodes the same keys, so the table is the only declaration.
struct DutySettingOptions<Config: DutyConfig>: ParsableArguments, CustomReflectable {
    /// The duty's settings as given (the defaults where no flag was).
    private(set) var config = Config()

    init() {}

    init(from decoder: Decoder) throws {
        let given = try decoder.container(keyedBy: Key.self)
        for setting in Self.offered {
            let key = Key(setting.name)
            switch setting.field {
            case .count(let path):
                config[keyPath: path] = try given.decode(Option<Int>.self, forKey: key).wrappedValue
            case .wholeSeconds(let path):
                config[keyPath: path] = try given.decode(Option<Duration>.self, forKey: key).wrappedValue.wholeSeconds
            case .seconds(let path):
                config[keyPath: path] = try given.decode(Option<Duration>.self, forKey: key).wrappedValue.seconds
            }
        }
    }

    var customMirror: Mirror {
        Mirror(self, children: Self.offered.map { (label: $0.name, value: Self.option($0)) }, displayStyle: .struct)
    }

    /// The settings offered on the command line, in the table's order.
    static var offered: [DutySetting<Config>] { Config.settings.filter(\.onCommandLine) }

    /// The option definition ArgumentParser reads a setting with.
    static func option(_ setting: DutySetting<Config>) -> Any {
        let defaults = Config()
        let name = NameSpecification.customLong(setting.name)
        switch setting.field {
        case .count(let path):
            return Option(wrappedValue: defaults[keyPath: path], name: name, parsing: .unconditional, help: ArgumentHelp(setting.help))
        case .wholeSeconds(let path):
            return Option(wrappedValue: Duration(seconds: Double(defaults[keyPath: path])), name: name, parsing: .unconditional,
                          help: ArgumentHelp(setting.help, valueName: "duration"))
        case .seconds(let path):
            return Option(wrappedValue: Duration(seconds: defaults[keyPath: path]), name: name, parsing: .unconditional,
                          help: ArgumentHelp(setting.help, valueName: "duration"))
        }
    }

    struct Key: CodingKey {
        let stringValue: String
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }
}
