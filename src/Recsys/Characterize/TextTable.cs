using System.Text;

namespace Recsys.Cli.Characterize;

/// <summary>A table of strings printed either aligned for a terminal or as a Markdown pipe table.</summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public void Add(params string[] cells)
    {
        if (cells.Length != headers.Length) throw new ArgumentException($"{cells.Length} cells for {headers.Length} columns", nameof(cells));
        _rows.Add(cells);
    }

    public string Render(bool markdown)
    {
        var sb = new StringBuilder();
        if (markdown)
        {
            sb.Append("| ").AppendJoin(" | ", headers).AppendLine(" |");
            sb.Append('|').AppendJoin("", headers.Select(_ => "---|")).AppendLine();
            foreach (string[] row in _rows) sb.Append("| ").AppendJoin(" | ", row.Select(c => c.Replace("|", "\\|", StringComparison.Ordinal))).AppendLine(" |");
            return sb.ToString();
        }
        int[] widths = [.. headers.Select((h, i) => _rows.Select(r => r[i].Length).Append(h.Length).Max())];
        // Text columns (the first) align left, numbers right.
        void Line(string[] cells) => sb.AppendJoin("  ", cells.Select((c, i) => i == 0 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).AppendLine();
        Line(headers);
        sb.AppendJoin("  ", widths.Select(w => new string('-', w))).AppendLine();
        foreach (string[] row in _rows) Line(row);
        return sb.ToString();
    }
}
