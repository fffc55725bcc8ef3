using Hive.Policy.Fs;

namespace Hive.Policy.Tests;

/// <summary>
/// <see cref="AclPolicy.DecidesAlike"/>: would moving a directory change the decision for anything in
/// it? Checked against hand-picked cases (rules at, above and below the renamed directory, with
/// <c>*</c>, <c>**</c> and <c>?</c>) and against brute force: every normalized suffix up to a length.
/// </summary>
public sealed class RenameDecisionTests
{
    private static AclPolicy Rules(params (string Path, Access Access)[] rules) =>
        AclPolicy.Parse("/w", rules.Select(r => new AclRule(r.Path, r.Access)).ToList());

    private static readonly AclPolicy Issue = Rules(("/w/**", Access.ReadWrite), ("/w/private/*.txt", Access.Deny), ("/w/cfg/*.yaml", Access.ReadOnly));

    [TestCase("/w/private", "/w/x", "/a.txt", TestName = "moving a directory out of a deny rule on its children")]
    [TestCase("/w/x", "/w/private", "/a.txt", TestName = "moving a directory into a deny rule on its children")]
    [TestCase("/w/cfg", "/w/tmp", "/a.yaml", TestName = "moving a directory out of a read-only rule")]
    [TestCase("/w/tmp", "/w/cfg", "/a.yaml", TestName = "moving a directory into a read-only rule")]
    public void A_rename_that_changes_a_decision_beneath_is_detected_with_an_example(string from, string to, string shape)
    {
        Assert.That(Issue.DecidesAlike(from, to, out var example), Is.False);
        Assert.That(example, Is.Not.Null);
        Assert.That(Issue.Decide(from + example), Is.Not.EqualTo(Issue.Decide(to + example)), $"the example {example} really differs");
        Assert.That(example, Does.EndWith(shape[^4..]), "the example has the shape the rule names");
    }

    [TestCase("/w/a", "/w/b")]
    [TestCase("/w/a/b/c", "/w/d")]
    [TestCase("/w/private/sub", "/w/x", TestName = "the deny rule names only direct children of private")]
    [TestCase("/w/x.txt", "/w/y.txt")]
    public void A_rename_within_one_rule_is_allowed(string from, string to)
    {
        Assert.That(Issue.DecidesAlike(from, to, out var example), Is.True, example);
    }

    [Test]
    public void A_rule_below_the_directory_with_a_globstar_moves_along_everywhere()
    {
        var policy = Rules(("/w/**", Access.ReadWrite), ("/w/**/*.env", Access.Deny), ("/w/**/node_modules/**", Access.ReadOnly));
        Assert.That(policy.DecidesAlike("/w/a/b", "/w/c", out _), Is.True, "the same rules apply at any depth");
        Assert.That(policy.DecidesAlike("/w/a/node_modules", "/w/c", out var example), Is.False, "leaving node_modules loses read-only");
        Assert.That(example, Is.EqualTo(string.Empty), "the directory itself already differs");
    }

    [Test]
    public void A_rule_above_the_directory_decides_both_sides_alike_only_if_it_covers_both()
    {
        var policy = Rules(("/w/**", Access.ReadWrite), ("/w/project/**", Access.ReadOnly));
        Assert.That(policy.DecidesAlike("/w/project/a", "/w/project/b", out _), Is.True);
        Assert.That(policy.DecidesAlike("/w/project/a", "/w/b", out var example), Is.False);
        Assert.That(example, Is.EqualTo(string.Empty));
    }

    [Test]
    public void A_rule_naming_the_directory_itself_only_changes_the_directory()
    {
        var policy = Rules(("/w/**", Access.ReadWrite), ("/w/a", Access.ReadOnly));
        Assert.That(policy.DecidesAlike("/w/a", "/w/b", out var example), Is.False);
        Assert.That(example, Is.EqualTo(string.Empty));
    }

    [Test]
    public void Question_marks_and_stars_inside_a_segment_are_compared_by_shape()
    {
        var policy = Rules(("/w/**", Access.ReadWrite), ("/w/*/?.key", Access.Deny), ("/w/d?/secret*", Access.Deny));
        Assert.That(policy.DecidesAlike("/w/a", "/w/b", out _), Is.True, "both match /w/*/?.key alike");
        Assert.That(policy.DecidesAlike("/w/a/b", "/w/c", out var deeper), Is.False, "one level deeper the star rule no longer applies");
        Assert.That(deeper, Does.Match(@"^/.\.key$"));
        Assert.That(policy.DecidesAlike("/w/d1", "/w/d2", out _), Is.True);
        Assert.That(policy.DecidesAlike("/w/d1", "/w/e1", out var secret), Is.False);
        Assert.That(secret, Does.StartWith("/secret"));
    }

    [Test]
    public void Only_normalized_suffixes_count()
    {
        // "/w/a?" matches "/w/ab", which is not beneath "/w/a": a sibling, not a descendant.
        var policy = Rules(("/w/**", Access.ReadWrite), ("/w/a?", Access.Deny));
        Assert.That(policy.DecidesAlike("/w/a", "/w/b", out var example), Is.True, example);
    }

    [Test]
    public void Unnormalized_or_root_paths_are_answered_conservatively()
    {
        Assert.That(Issue.DecidesAlike("/w/a/../private", "/w/x", out _), Is.False);
        Assert.That(Issue.DecidesAlike("/", "/w/x", out _), Is.False);
        Assert.That(Issue.DecidesAlike("/w/a", "/w/a", out _), Is.True);
    }

    [Test]
    public void Equal_rules_with_the_same_access_do_not_count_as_a_difference()
    {
        // Different rules match on each side, but they say the same thing.
        var policy = Rules(("/w/**", Access.ReadWrite), ("/w/a/**", Access.ReadOnly), ("/w/b/**", Access.ReadOnly));
        Assert.That(policy.DecidesAlike("/w/a", "/w/b", out var example), Is.True, example);
        Assert.That(policy.DecidesAlike("/w/a/x", "/w/b/y", out example), Is.True, example);
    }

    [Test]
    public void Ties_between_equally_specific_rules_are_broken_as_decide_does()
    {
        var policy = Rules(("/w/**", Access.ReadWrite), ("/w/*/k", Access.Deny), ("/w/a/k", Access.ReadOnly), ("/w/b/?", Access.ReadWrite));
        Assert.That(policy.DecidesAlike("/w/a", "/w/b", out var example), Is.False);
        Assert.That(example, Is.EqualTo("/k"));
    }

    /// <summary>Every normalized suffix of up to 6 characters over a few letters, '.' and '/'.</summary>
    private static readonly List<string> AllSuffixes = [.. Suffixes("abxy.", 6)];

    /// <summary>A seeded random walk over rule sets and paths, each answer checked against every short normalized suffix.</summary>
    [Test]
    public void Agrees_with_brute_force_on_random_rule_sets()
    {
        var random = new Random(16);
        string[] segments = ["a", "b", "*", "**", "?", "a*", "*b", "?b", ".x", "*.x", "a.x"];
        string[] names = ["a", "b", "ab", "a.x", "bb", ".x"];
        var checkedCases = 0;
        for (var round = 0; round < 300; round++)
        {
            var rules = new List<AclRule> { new("/w/**", Access.ReadWrite) };
            for (var r = random.Next(1, 5); r > 0; r--)
            {
                var depth = random.Next(1, 4);
                var pattern = "/w/" + string.Join('/', Enumerable.Range(0, depth).Select(_ => segments[random.Next(segments.Length)]));
                if (pattern.Contains("/**/**", StringComparison.Ordinal))
                {
                    continue;
                }

                rules.Add(new AclRule(pattern, (Access)random.Next(3)));
            }

            var policy = AclPolicy.Parse("/w", rules);
            var from = "/w/" + string.Join('/', Enumerable.Range(0, random.Next(1, 3)).Select(_ => names[random.Next(names.Length)]));
            var to = "/w/" + string.Join('/', Enumerable.Range(0, random.Next(1, 3)).Select(_ => names[random.Next(names.Length)]));
            var alike = policy.DecidesAlike(from, to, out var example);
            var witness = AllSuffixes.FirstOrDefault(s => Decide(policy, from + s) != Decide(policy, to + s));
            var context = $"{string.Join(", ", rules.Select(r => r.Path + "=" + r.Access.Name()))}; {from} -> {to}";
            if (alike)
            {
                Assert.That(witness, Is.Null, $"said alike, but {witness} differs: {context}");
            }
            else
            {
                Assert.That(example, Is.Not.Null, context);
                Assert.That(policy.Decide(from + example), Is.Not.EqualTo(policy.Decide(to + example)), $"example {example}: {context}");
            }

            checkedCases++;
        }

        Assert.That(checkedCases, Is.GreaterThan(250));
    }

    /// <summary>
    /// The oracle. Rules are regular expressions with a 100 ms match timeout, which a loaded machine
    /// (a GC pause with thousands of freshly compiled expressions) can exceed on a short path: retried.
    /// </summary>
    private static Access Decide(AclPolicy policy, string path)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return policy.Decide(path);
            }
            catch (System.Text.RegularExpressions.RegexMatchTimeoutException) when (attempt < 5)
            {
            }
        }
    }

    /// <summary>"" and every "/name(/name)*" up to <paramref name="maxLength"/> characters with names from <paramref name="chars"/>, normalized.</summary>
    private static IEnumerable<string> Suffixes(string chars, int maxLength)
    {
        yield return string.Empty;
        var frontier = new List<string> { string.Empty };
        for (var length = 1; length <= maxLength; length++)
        {
            var next = new List<string>();
            foreach (var prefix in frontier)
            {
                foreach (var c in "/" + chars)
                {
                    var candidate = prefix + c;
                    if (candidate[0] != '/' || candidate.Contains("//", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    next.Add(candidate);
                    if (AclPolicy.IsNormalized("/w" + candidate))
                    {
                        yield return candidate;
                    }
                }
            }

            frontier = next;
        }
    }
}
