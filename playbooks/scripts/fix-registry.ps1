# fleet-script: fix.registry
# fleet-version: 1
# Sets one DWORD under HKLM (value $null removes it, which is how a rollback restores an
# absent value). Reports the previous value or its absence. Idempotent.
param([Parameter(Mandatory)][string]$ParamsJson)
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
$p = $ParamsJson | ConvertFrom-Json
$path = [string]$p.path
$name = [string]$p.name
if (-not $path.StartsWith('HKLM:\')) { throw "fix.registry only writes under HKLM:\, not '$path'" }

function Read-Value {
    $item = Get-ItemProperty -LiteralPath $path -Name $name -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    return [int]$item.$name
}

$before = Read-Value
if ($null -eq $p.value) {
    if ($null -ne $before) { Remove-ItemProperty -LiteralPath $path -Name $name }
} elseif (($null -eq $before) -or ($before -ne [int]$p.value)) {
    if (-not (Test-Path -LiteralPath $path)) { New-Item -Path $path -Force | Out-Null }
    New-ItemProperty -LiteralPath $path -Name $name -Value ([int]$p.value) -PropertyType DWord -Force | Out-Null
}
$after = Read-Value
$change = @{ target = "$path\$name"; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($change) }
