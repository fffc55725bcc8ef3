using System.Reflection;

namespace Hive.Attack.Tests;

/// <summary>The suite itself: every attempt names its defence and where it comes from, and there are enough of them.</summary>
[TestFixture]
public sealed class SuiteShapeTests
{
    private static IEnumerable<MethodInfo> Attempts() => typeof(SuiteShapeTests).Assembly.GetTypes()
        .Where(t => t != typeof(SuiteShapeTests))
        .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance))
        .Where(m => m.GetCustomAttributes<TestAttribute>().Any() || m.GetCustomAttributes<TestCaseAttribute>().Any() || m.GetCustomAttributes<TestCaseSourceAttribute>().Any());

    /// <summary>Cases of one test method: its [TestCase]s, the items of its [TestCaseSource]s, or 1.</summary>
    private static int CaseCount(MethodInfo method)
    {
        var cases = method.GetCustomAttributes<TestCaseAttribute>().Count();
        foreach (var source in method.GetCustomAttributes<TestCaseSourceAttribute>())
        {
            var type = source.SourceType ?? method.DeclaringType!;
            const BindingFlags Static = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
            var value = type.GetField(source.SourceName!, Static)?.GetValue(null)
                ?? type.GetProperty(source.SourceName!, Static)?.GetValue(null)
                ?? type.GetMethod(source.SourceName!, Static, [])?.Invoke(null, null);
            cases += value is System.Collections.IEnumerable items ? items.Cast<object>().Count() : 0;
        }

        return Math.Max(1, cases);
    }

    private static string? Origin(MethodInfo method) =>
        method.GetCustomAttributes<CategoryAttribute>().Concat(method.DeclaringType!.GetCustomAttributes<CategoryAttribute>())
            .Select(c => c.Name).FirstOrDefault(n => n is From.Inside or From.Outside);

    [Test]
    public void Every_attempt_names_its_defence_and_origin()
    {
        var missing = Attempts()
            .Where(m => m.GetCustomAttribute<DefenceAttribute>() is null && m.DeclaringType!.GetCustomAttribute<DefenceAttribute>() is null || Origin(m) is null)
            .Select(m => $"{m.DeclaringType!.Name}.{m.Name}")
            .ToList();
        Assert.That(missing, Is.Empty, "attack tests without [Defence] or [Category(From.Inside|From.Outside)]");
    }

    [Test]
    public void There_are_at_least_60_attempts_from_inside_and_15_from_outside()
    {
        var inside = Attempts().Where(m => Origin(m) == From.Inside).Sum(CaseCount);
        var outside = Attempts().Where(m => Origin(m) == From.Outside).Sum(CaseCount);
        Assert.Multiple(() =>
        {
            Assert.That(inside, Is.GreaterThanOrEqualTo(60), "attempts from inside a sandbox");
            Assert.That(outside, Is.GreaterThanOrEqualTo(15), "attempts against the API from outside");
        });
    }
}
