namespace Hive.Testing;

/// <summary>One Controller shared by the tests of a fixture; names are unique per test so tests never collide.</summary>
public static class Names
{
    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";
}
