# Shared by fleet's scripts: inserted where a script says `# fleet-include: prologue`
# (fleet.playbook.scripts). Strict errors, no progress noise, arrays that serialize the
# same on 5.1 and 7, and the one frame writer every script answers through.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Windows PowerShell 5.1: without this, arrays serialize as {"value":[...],"Count":n}.
try { Remove-TypeData -TypeName System.Array } catch { $null = $_ }

function Write-Frame($doc) {
    # One frame. Non-ASCII is escaped so it survives any console code page, and < > so no value
    # can fake a frame marker (Windows PowerShell's serializer escapes them, PowerShell 7's does not).
    $json = ConvertTo-Json -InputObject $doc -Depth 6 -Compress
    $escape = [System.Text.RegularExpressions.MatchEvaluator] { param($m) '\u{0:x4}' -f [int][char]$m.Value }
    Write-Output ('<<FLEET-JSON>>' + [regex]::Replace($json, '[^\x00-\x7F]|[<>]', $escape) + '<<FLEET-END>>')
}
