package accounts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// accountStore is what the service needs from rooms.Store.
type accountStore interface {
	CreateAccount(ctx context.Context, a rooms.Account) (rooms.Account, error)
	GetAccount(ctx context.Context, username string) (rooms.Account, error)
	UpdateAccount(ctx context.Context, username string, fn func(*rooms.Account) error) (rooms.Account, error)
}

// Options configure a Service. Zero values take the defaults.
type Options struct {
	Params Params
	Policy Policy
	Clock  rooms.Clock
	Logger *slog.Logger
	// Rand supplies salts; nil means crypto/rand.
	Rand io.Reader
}

// Service creates accounts and signs users in.
type Service struct {
	store  accountStore
	params Params
	policy Policy
	clock  rooms.Clock
	log    *slog.Logger
	rnd    io.Reader
	// dummy is a hash verified for unknown usernames, so a wrong username
	// takes as long as a wrong password.
	dummy string
}

// New returns a service over store.
func New(store accountStore, opts Options) (*Service, error) {
	if opts.Params == (Params{}) {
		opts.Params = DefaultParams()
	}
	if opts.Clock == nil {
		opts.Clock = rooms.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dummy, err := Hash("dummy-password-for-timing", opts.Params, opts.Rand)
	if err != nil {
		return nil, err
	}
	return &Service{
		store:  store,
		params: opts.Params,
		policy: opts.Policy.withDefaults(),
		clock:  opts.Clock,
		log:    opts.Logger.With("component", "accounts"),
		rnd:    opts.Rand,
		dummy:  dummy,
	}, nil
}

// NormalizeUsername is how usernames typed by people are stored and looked
// up.
func NormalizeUsername(u string) string { return strings.ToLower(strings.TrimSpace(u)) }

// Create adds an account with a hashed password.
func (s *Service) Create(ctx context.Context, username, displayName string, role rooms.Role, password string) (rooms.Account, error) {
	hash, err := Hash(password, s.params, s.rnd)
	if err != nil {
		return rooms.Account{}, err
	}
	a, err := s.store.CreateAccount(ctx, rooms.Account{
		Username:     NormalizeUsername(username),
		DisplayName:  displayName,
		Role:         role,
		PasswordHash: hash,
	})
	if err != nil {
		return rooms.Account{}, err
	}
	s.log.Info("account created", "username", a.Username, "role", a.Role)
	return a, nil
}

// SetPassword replaces an account's password and lifts any lock.
func (s *Service) SetPassword(ctx context.Context, username, password string) error {
	hash, err := Hash(password, s.params, s.rnd)
	if err != nil {
		return err
	}
	_, err = s.store.UpdateAccount(ctx, NormalizeUsername(username), func(a *rooms.Account) error {
		a.PasswordHash = hash
		s.policy.RecordSuccess(a)
		return nil
	})
	return err
}

// Authenticate checks a sign-in. It returns ErrBadCredentials for an unknown
// user or a wrong password, and ErrLocked (wrapped with the unlock time) while
// the account is locked, without looking at the password, so a locked account
// cannot be brute-forced. Other errors (store unavailable) are returned as
// they are.
func (s *Service) Authenticate(ctx context.Context, username, password string) (rooms.Account, error) {
	username = NormalizeUsername(username)
	a, err := s.store.GetAccount(ctx, username)
	if errors.Is(err, rooms.ErrNotFound) {
		_, _ = Verify(s.dummy, password)
		return rooms.Account{}, ErrBadCredentials
	}
	if err != nil {
		return rooms.Account{}, err
	}
	now := s.clock.Now()
	if s.policy.Locked(a, now) {
		return rooms.Account{}, lockedErr(a.LockedUntil)
	}
	ok, err := Verify(a.PasswordHash, password)
	if err != nil {
		s.log.Error("stored password hash unreadable", "username", username, "err", err)
		return rooms.Account{}, ErrBadCredentials
	}
	if !ok {
		var locked bool
		a, err = s.store.UpdateAccount(ctx, username, func(a *rooms.Account) error {
			locked = s.policy.RecordFailure(a, now)
			return nil
		})
		if err != nil {
			return rooms.Account{}, fmt.Errorf("%w (and recording the failure failed: %w)", ErrBadCredentials, err)
		}
		if locked {
			s.log.Warn("account locked after repeated failed sign-ins", "username", username, "until", a.LockedUntil)
			return rooms.Account{}, lockedErr(a.LockedUntil)
		}
		return rooms.Account{}, ErrBadCredentials
	}
	// Record the success through the store even when nothing was wrong
	// before: failures counted by concurrent attempts may have locked the
	// account while this password was being checked, and then the lock wins.
	rehash := ""
	if NeedsRehash(a.PasswordHash, s.params) {
		if h, err := Hash(password, s.params, s.rnd); err == nil {
			rehash = h
		}
	}
	a, err = s.store.UpdateAccount(ctx, username, func(a *rooms.Account) error {
		if s.policy.Locked(*a, now) {
			return lockedErr(a.LockedUntil)
		}
		s.policy.RecordSuccess(a)
		if rehash != "" {
			a.PasswordHash = rehash
		}
		return nil
	})
	if err != nil {
		return rooms.Account{}, err
	}
	return a, nil
}

func lockedErr(until time.Time) error {
	return fmt.Errorf("%w until %s", ErrLocked, until.Format(time.RFC3339))
}
