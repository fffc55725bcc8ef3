namespace Hive.Testing;

/// <summary>Where the built programs and images are (set by tests/run.sh; defaults fit a local `make build`).</summary>
public static class Paths
{
    public static string Repo { get; } = FindRepo();

    public static string Out { get; } = Environment.GetEnvironmentVariable("HIVE_OUT") is { Length: > 0 } o ? o : Path.Combine(Repo, "out");

    public static string Controller => Path.Combine(Out, "controller", "hive-controller");

    public static string Sbxd => Path.Combine(Out, "sbxd", "hive-sbxd");

    public static string Cli => Path.Combine(Out, "cli", "hive");

    public static string SbxProxy => Path.Combine(Out, "sbxproxy", "hive-sbxproxy");

    public static string SbxFuse => Path.Combine(Out, "sbxfuse", "hive-sbxfuse");

    public static string AgentBundle => Environment.GetEnvironmentVariable("HIVE_AGENT_BUNDLE") is { Length: > 0 } b ? b : Path.Combine(Out, "agent-bundle");

    public static string ImageDir => Environment.GetEnvironmentVariable("HIVE_IMAGE_DIR") is { Length: > 0 } i ? i : "/var/cache/hive/images";

    private static string FindRepo()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Hive.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Hive.sln not found above " + AppContext.BaseDirectory);
    }
}
