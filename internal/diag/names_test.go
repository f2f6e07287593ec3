package diag

import (
	"crypto/tls"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// goPackage is what a package of this module declares, read from its
// source: package submit imports this one, so a test here cannot import it.
type goPackage struct {
	names   map[string]bool              // top-level functions, types, variables and constants
	fields  map[string]map[string]string // struct type -> field -> the field's type, as written
	methods map[string]map[string]bool   // type -> methods
}

func parsePackage(t *testing.T, dir string) goPackage {
	t.Helper()
	p := goPackage{names: map[string]bool{}, fields: map[string]map[string]string{}, methods: map[string]map[string]bool{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					p.names[d.Name.Name] = true
					continue
				}
				recv := d.Recv.List[0].Type
				if star, ok := recv.(*ast.StarExpr); ok {
					recv = star.X
				}
				if id, ok := recv.(*ast.Ident); ok {
					if p.methods[id.Name] == nil {
						p.methods[id.Name] = map[string]bool{}
					}
					p.methods[id.Name][d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						p.names[s.Name.Name] = true
						st, ok := s.Type.(*ast.StructType)
						if !ok {
							continue
						}
						p.fields[s.Name.Name] = map[string]string{}
						for _, fl := range st.Fields.List {
							for _, n := range fl.Names {
								p.fields[s.Name.Name][n.Name] = exprString(fl.Type)
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							p.names[n.Name] = true
						}
					}
				}
			}
		}
	}
	return p
}

// exprString writes a type expression as it appears in source: "*tls.Config".
func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.StarExpr:
		return "*" + exprString(e.X)
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.ArrayType:
		return "[]" + exprString(e.Elt)
	}
	return "?"
}

var (
	// qualified is a name given with its package or type: submit.XOAuth2,
	// Dialer.TLSConfig.RootCAs, Mailer.RateLimit, tlsmode.Candidate.
	qualified = regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)+`)
	// method is (*submit.Mailer).Send.
	method = regexp.MustCompile(`\(\*(\w+)\.(\w+)\)\.(\w+)`)
	// literal is tlsmode.Candidate{Port: 465, Mode: tlsmode.StartTLS}.
	literal = regexp.MustCompile(`(\w+)\.(\w+)\{([^}]*)\}`)
	url     = regexp.MustCompile(`https?://\S+`)
	// camel is a word that looks like a Go identifier: a capital inside.
	camel = regexp.MustCompile(`\b[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*\b`)
)

// TestGoAdviceNamesRealCode resolves every Go identifier in the advice
// given to Go programmers against the packages it names: submit's and
// tlsmode's declarations (functions, types, variables, constants, struct
// fields, methods) and crypto/tls's Config. A rename in those packages
// breaks this test instead of the advice. Names of package submit are
// written qualified (submit.PasswordAuth, Dialer.TLSConfig); an unqualified
// one fails too, so that the check cannot be dodged.
func TestGoAdviceNamesRealCode(t *testing.T) {
	pkgs := map[string]goPackage{
		"submit":  parsePackage(t, filepath.Join("..", "..", "submit")),
		"tlsmode": parsePackage(t, filepath.Join("..", "..", "tlsmode")),
	}
	tlsConfig := reflect.TypeOf(tls.Config{})
	// field resolves a chain of fields from a type of package pkg.
	var field func(pkg, typ string, chain []string) bool
	field = func(pkg, typ string, chain []string) bool {
		if len(chain) == 0 {
			return true
		}
		if pkg == "tls" && typ == "Config" {
			f, ok := tlsConfig.FieldByName(chain[0])
			return ok && f.IsExported() && len(chain) == 1
		}
		p := pkgs[pkg]
		if p.methods[typ][chain[0]] && len(chain) == 1 {
			return true
		}
		ft, ok := p.fields[typ][chain[0]]
		if !ok {
			return false
		}
		ft = strings.TrimPrefix(ft, "*")
		if q, name, ok := strings.Cut(ft, "."); ok {
			return field(q, name, chain[1:])
		}
		return field(pkg, ft, chain[1:])
	}
	resolve := func(token string) (checked, ok bool) {
		parts := strings.Split(token, ".")
		if p, isPkg := pkgs[parts[0]]; isPkg {
			return true, p.names[parts[1]] && field(parts[0], parts[1], parts[2:])
		}
		for name, p := range pkgs {
			if _, isType := p.fields[parts[0]]; isType && ast.IsExported(parts[0]) {
				return true, field(name, parts[0], parts[1:])
			}
		}
		return false, false // a host name, an API of another system: not Go
	}

	texts := AdviceTexts(Go)
	if len(texts) < 50 {
		t.Fatalf("only %d advice texts: AdviceTexts misses some", len(texts))
	}
	resolved := 0
	for _, text := range texts {
		s := url.ReplaceAllString(text, " ")
		for _, m := range method.FindAllStringSubmatch(s, -1) {
			resolved++
			if p, ok := pkgs[m[1]]; !ok || !p.names[m[2]] || !p.methods[m[2]][m[3]] {
				t.Errorf("advice names %s, which does not exist: %q", m[0], text)
			}
		}
		for _, m := range literal.FindAllStringSubmatch(s, -1) {
			for _, kv := range strings.Split(m[3], ",") {
				key, _, _ := strings.Cut(strings.TrimSpace(kv), ":")
				if key != "" && !field(m[1], m[2], []string{key}) {
					t.Errorf("advice names field %s of %s.%s, which does not exist: %q", key, m[1], m[2], text)
				}
			}
		}
		s = method.ReplaceAllString(s, " ")
		for _, tok := range qualified.FindAllString(s, -1) {
			checked, ok := resolve(tok)
			if checked {
				resolved++
			}
			if checked && !ok {
				t.Errorf("advice names %s, which does not exist: %q", tok, text)
			}
		}
		for _, w := range camel.FindAllString(qualified.ReplaceAllString(s, " "), -1) {
			for name, p := range pkgs {
				if p.names[w] {
					t.Errorf("advice names %s unqualified: write %s.%s so that this test checks it: %q", w, name, w, text)
				}
			}
			if _, ok := tlsConfig.FieldByName(w); ok {
				t.Errorf("advice names %s unqualified: write Dialer.TLSConfig.%s: %q", w, w, text)
			}
		}
	}
	if resolved < 20 {
		t.Errorf("only %d identifiers resolved: the patterns miss the advice's names", resolved)
	}
}
