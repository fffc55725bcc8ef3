namespace Hive.Attack.Tests;

/// <summary>
/// The defence an attack test proves: removing it makes the test fail. Every test of this suite
/// carries one (checked by <see cref="SuiteShapeTests"/>); docs/SECURITY.md's table lists them.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class, AllowMultiple = false)]
public sealed class DefenceAttribute(string defence) : PropertyAttribute("Defence", defence)
{
    public string Defence { get; } = defence;
}

/// <summary>Where an attempt comes from: the sandbox's own shell, or a caller of the API.</summary>
public static class From
{
    /// <summary>Run as root inside a sandbox (its shell, its MCP tools, its network).</summary>
    public const string Inside = "inside";

    /// <summary>A caller of the Controller's API without the key, or a web page in a browser.</summary>
    public const string Outside = "outside";
}
