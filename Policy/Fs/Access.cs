namespace Hive.Policy.Fs;

/// <summary>What a path allows. Ordered from least to most permissive.</summary>
public enum Access
{
    Deny = 0,
    ReadOnly = 1,
    ReadWrite = 2,
}

public static class AccessNames
{
    public static bool TryParse(string text, out Access access)
    {
        switch (text)
        {
            case "rw":
                access = Access.ReadWrite;
                return true;
            case "ro":
                access = Access.ReadOnly;
                return true;
            case "deny":
                access = Access.Deny;
                return true;
            default:
                access = Access.Deny;
                return false;
        }
    }

    public static string Name(this Access access) => access switch
    {
        Access.ReadWrite => "rw",
        Access.ReadOnly => "ro",
        _ => "deny",
    };
}
