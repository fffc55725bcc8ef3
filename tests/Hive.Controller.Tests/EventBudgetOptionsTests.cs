using Hive.Controller.Hosting;

namespace Hive.Controller.Tests;

/// <summary>The event budget's options: defaults, flags over environment, ranges.</summary>
public sealed class EventBudgetOptionsTests
{
    private static (ControllerOptions? Options, IReadOnlyList<string> Errors, bool Help) Parse(string[] args, Dictionary<string, string>? env = null) =>
        ControllerConfiguration.Load(args, env ?? new Dictionary<string, string>(), "/opt/hive/controller");

    [Test]
    public void Defaults_budget_rate_burst_and_aggregation()
    {
        var (options, errors, _) = Parse([]);
        Assert.That(errors, Is.Empty);
        Assert.That(options!.EventsBudgetBytes, Is.EqualTo(1024L * 1024 * 1024));
        Assert.That((options.EventsRate, options.EventsBurst), Is.EqualTo((20_000d, 200_000L)));
        Assert.That(options.EventsAggregate, Is.EqualTo(TimeSpan.FromSeconds(1)));
    }

    [Test]
    public void Flags_and_environment_set_them()
    {
        var env = new Dictionary<string, string> { ["HIVE_EVENTS_BUDGET"] = "65536", ["HIVE_EVENTS_RATE"] = "50", ["HIVE_EVENTS_AGGREGATE"] = "0" };
        var (options, errors, _) = Parse(["--events-burst", "20", "--events-rate=75.5"], env);
        Assert.That(errors, Is.Empty);
        Assert.That(options!.EventsBudgetBytes, Is.EqualTo(65536));
        Assert.That((options.EventsRate, options.EventsBurst), Is.EqualTo((75.5, 20L)), "a flag wins over the environment");
        Assert.That(options.EventsAggregate, Is.EqualTo(TimeSpan.Zero), "0 turns aggregation off");
    }

    [Test]
    public void Out_of_range_values_are_reported_together()
    {
        var (options, errors, _) = Parse(["--events-budget", "-1", "--events-rate", "abc", "--events-burst", "1e12", "--events-aggregate", "7200"]);
        Assert.That(options, Is.Null);
        Assert.That(errors, Has.Count.EqualTo(4), string.Join("\n", errors));
        Assert.That(errors[0], Does.Contain("--events-budget"));
    }

    [Test]
    public void The_help_names_every_option_and_its_variable()
    {
        foreach (var (flag, variable) in ControllerConfiguration.Names)
        {
            Assert.That(ControllerConfiguration.Usage, Does.Contain(flag + " ").And.Contain(" " + variable + " "), flag);
        }

        Assert.That(ControllerConfiguration.Usage, Does.Contain("HIVEBOX_<NAME>").And.Contain("HIVE_<NAME>"));
    }
}
